// For native tests of the kernel backends: run a test body alone in a new
// network namespace (a thread that unshares one), so that the interfaces it
// creates never touch the host's and vanish with the thread.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
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

}  // namespace vpc
