// For native tests of the kernel backends: run a test body alone in a new
// network namespace (a thread that unshares one), so that the interfaces it
// creates never touch the host's and vanish with the thread.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace vpc {

// Runs fn in that thread; returns why it could not (needs root, or
// `need_file`, e.g. /dev/net/tun, is missing), or "" when fn ran.
inline std::string in_own_netns(const std::function<void()>& fn, const char* need_file = nullptr) {
  std::string skip;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) < 0) {
      skip = std::string("cannot create a network namespace (needs root): ") + strerror(errno);
      return;
    }
    if (need_file && access(need_file, R_OK | W_OK) < 0) {
      skip = std::string(need_file) + " is missing";
      return;
    }
    fn();
  });
  t.join();
  return skip;
}

// A "container": a thread alone in a network namespace of its own, alive
// until end() (or destruction); then nothing holds the namespace and the
// kernel dismantles it. `id()` names it to `ip link set ... netns ID` and
// `nsenter -t ID -n`.
class ContainerNetns {
 public:
  ContainerNetns() {
    th_ = std::thread([this] {
      std::unique_lock<std::mutex> g(mu_);
      tid_ = unshare(CLONE_NEWNET) == 0 ? gettid() : -1;
      cv_.notify_all();
      cv_.wait(g, [this] { return done_; });
    });
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [this] { return tid_ != 0; });
  }
  ~ContainerNetns() { end(); }
  bool ok() const { return tid_ > 0; }
  std::string id() const { return std::to_string(tid_); }
  void end() {
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = true;
      cv_.notify_all();
    }
    if (th_.joinable()) th_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  pid_t tid_ = 0;
  bool done_ = false;
  std::thread th_;
};

}  // namespace vpc
