#include "cpu_affinity.h"

#include <dirent.h>
#include <sched.h>

#include <cstdlib>

namespace vpc::addon {

namespace {

std::vector<pid_t> threads_of_this_process() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    out.push_back(pid_t(std::atoi(e->d_name)));
  }
  closedir(d);
  return out;
}

}  // namespace

int CpuVacate::vacate(int cpu) {
  restore();
  if (cpu < 0 || cpu >= CPU_SETSIZE) return 0;
  cpu_ = cpu;
  for (pid_t tid : threads_of_this_process()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(tid, sizeof(set), &set) != 0) continue;
    if (!CPU_ISSET(cpu, &set) || CPU_COUNT(&set) < 2) continue;
    CPU_CLR(cpu, &set);
    if (sched_setaffinity(tid, sizeof(set), &set) == 0) moved_.push_back(tid);
  }
  return int(moved_.size());
}

void CpuVacate::restore() {
  for (pid_t tid : moved_) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(tid, sizeof(set), &set) != 0) continue;  // gone
    CPU_SET(cpu_, &set);
    sched_setaffinity(tid, sizeof(set), &set);
  }
  moved_.clear();
  cpu_ = -1;
}

}  // namespace vpc::addon
