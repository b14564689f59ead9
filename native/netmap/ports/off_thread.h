// A port's slow system calls, off the engine thread.
//
// A kernel port's link check runs on the engine thread, and so did what it
// does when the interface goes away or comes back: closing a packet socket
// waits for an RCU grace period (packet_release -> synchronize_net, twice for
// an afpacket port's two sockets), and opening one sizes and maps its rings;
// an AF_XDP port loads and attaches its XDP program and registers the whole
// buffer pool as its UMEM. Every port of the switch waited meanwhile: 50-60
// ms when an afpacket port's interface disappeared, 20-30 ms when it came
// back, 20-120 ms for an AF_XDP port (scratch measurements on the 2-vCPU test
// VM, 2026-12-05; `npm run bench -- e2e reopen` measures it).
//
// A port hands such work to an OffThread instead: one job at a time, on a
// thread of its own ("vpc-reopen"). The job must not touch what the engine
// thread uses (the port's rings, its buffer cache, its status counters): it
// gets what to close and returns what it opened, and the engine thread looks
// for that result at its next link checks (take) and adopts it. The port
// stays down meanwhile.
#pragma once

#include <pthread.h>

#include <atomic>
#include <functional>
#include <memory>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace vpc {

// Tests only: when set, every job calls it first (on the job's thread), so a
// test can hold a job and see that the engine goes on meanwhile. Set and
// cleared while no job runs.
inline std::function<void()>& off_thread_test_gate() {
  static std::function<void()> gate;
  return gate;
}

template <class Result>
class OffThread {
 public:
  OffThread() = default;
  OffThread(const OffThread&) = delete;
  OffThread& operator=(const OffThread&) = delete;
  ~OffThread() { wait(); }  // a result nobody took is destroyed with it

  // A job is running, or has finished and its result was not taken.
  bool busy() const { return th_.joinable() || has_; }

  // Runs job() -> Result on a new thread. Only when !busy(). When no thread
  // can be made (the process's or the system's thread limit), the job runs
  // here instead: the engine waits for it, as it always did, rather than
  // failing.
  template <class Fn>
  void start(Fn&& job) {
    done_.store(false, std::memory_order_relaxed);
    auto shared = std::make_shared<std::decay_t<Fn>>(std::forward<Fn>(job));
    try {
      th_ = std::thread([this, shared] {
        pthread_setname_np(pthread_self(), "vpc-reopen");
        if (auto gate = off_thread_test_gate()) gate();  // a copy: the test may clear it meanwhile
        result_ = (*shared)();
        done_.store(true, std::memory_order_release);
      });
    } catch (const std::system_error&) {
      result_ = (*shared)();
      has_ = true;
    }
  }

  // True, with the job's result in *out, once the job has finished; false
  // (and nothing waits) while it runs or when there is none.
  bool take(Result* out) {
    if (th_.joinable()) {
      if (!done_.load(std::memory_order_acquire)) return false;
      th_.join();
      has_ = true;
    }
    if (!has_) return false;
    has_ = false;
    *out = std::move(result_);
    result_ = Result{};
    return true;
  }

  // Waits for a running job; its result stays for take() (or goes with the
  // OffThread).
  void wait() {
    if (!th_.joinable()) return;
    th_.join();
    has_ = true;
  }

 private:
  std::thread th_;
  std::atomic<bool> done_{false};
  bool has_ = false;  // the job finished and was joined; result_ not taken yet
  Result result_{};
};

}  // namespace vpc
