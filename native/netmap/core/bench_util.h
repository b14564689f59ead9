// Plumbing shared by the native benchmarks (*_bench.cc): command-line
// options, thread pinning, draining a pipe, and the machine description that
// every JSON result carries.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "core/command.h"
#include "ports/pipe.h"

namespace vpc::bench {

struct Args {
  double seconds = 2.0;     // throughput mode: measured time per case
  std::string json;         // where to write the results
  std::string only;         // run one case
  bool callgrind = false;   // deterministic stepping on one thread
  uint64_t frames = 200000; // callgrind mode: frames per case
};

// Parses the options every native benchmark takes; exits with usage on error.
inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--seconds" && i + 1 < argc) a.seconds = atof(argv[++i]);
    else if (s == "--json" && i + 1 < argc) a.json = argv[++i];
    else if (s == "--only" && i + 1 < argc) a.only = argv[++i];
    else if (s == "--callgrind") a.callgrind = true;
    else if (s == "--frames" && i + 1 < argc) a.frames = strtoull(argv[++i], nullptr, 10);
    else {
      fprintf(stderr, "usage: %s [--seconds S] [--json FILE] [--only CASE] [--callgrind [--frames N]]\n", argv[0]);
      exit(2);
    }
  }
  return a;
}

inline void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline std::unique_ptr<Command> cmd(CmdOp op) {
  auto c = std::make_unique<Command>();
  c->op = op;
  return c;
}

// Receives and frees everything waiting at a pipe's far end.
inline uint64_t drain(PipePeer& peer) {
  Pkt pk[kMaxBurst];
  uint64_t got = 0;
  for (uint32_t n; (n = peer.recv(pk, kMaxBurst)) != 0;) {
    for (uint32_t i = 0; i < n; ++i) peer.cache().free(pk[i].buf);
    got += n;
  }
  return got;
}

// {"cpus": N, "cpu_model": "..."} for the JSON results.
inline std::string machine_json() {
  std::string model = "unknown";
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  for (char& ch : model)
    if (ch == '"' || ch == '\\') ch = ' ';
  return "{\"cpus\": " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + ", \"cpu_model\": \"" + model + "\"}";
}

}  // namespace vpc::bench
