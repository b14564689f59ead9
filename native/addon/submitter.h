// The addon's submitter: one thread per engine that hands the engine every
// command, in the order JavaScript sent them, and first opens the
// kernel-facing port a createPort or createUplink brings.
//
//   JS thread ──Command()──► queue ──► submitter: open_port() (if any),
//                                      Engine::submit() ──► engine
//
// Opening a port (an afpacket socket and its rings, a tap, AF_XDP sockets:
// about 16 ms for an afpacket port) and, inside Engine::submit, the kernel
// path's BPF load (25-34 ms, once) and each port's hooks (7-24 ms) are
// system calls that take milliseconds. Here they do not hold Node's thread:
// vpcd's control socket, metrics and timers keep answering while a
// configuration with many ports applies. Everything else about a command is
// as before: its fields are checked on the JS thread (a bad field still
// throws at once), and its Promise settles when the engine has applied it.
//
// A port that cannot be opened completes its command through `open_failed`,
// in its turn (a barrier stands in for it in the engine's queue); the
// command itself never reaches the engine. stop() lets the job in hand finish,
// drops the queued ones (their Promises are rejected by the caller) and joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/command.h"
#include "core/engine.h"
#include "ports/spec.h"

namespace vpc::addon {

struct SubmitJob {
  std::unique_ptr<vpc::Command> cmd;
  bool open = false;  // open `spec` first and hand the port over in cmd->new_port
  PortSpec spec;
  KernelPortOptions opts;
  std::shared_ptr<PortStatus> status;
  std::function<void(Status, std::string)> open_failed;
};

class Submitter {
 public:
  explicit Submitter(Engine* engine);
  ~Submitter();
  Submitter(const Submitter&) = delete;
  Submitter& operator=(const Submitter&) = delete;

  void push(SubmitJob job);
  void stop();

 private:
  void run();
  void submit(SubmitJob& job);

  Engine* engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SubmitJob> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// Where deleted ports are closed: one thread that lets go of each backend
// the engine gave up (Result::closed_port: detach, close, destroy) and then
// settles its command. A tap's last close unregisters its device, about
// 18 ms; on the engine thread that stalled every port, on Node's thread the
// event loop. The command settles after the close, so the interface's name
// is free again when deletePort resolves. The destructor closes what is
// queued, settles it, and joins: destroy it after the engine (which hands it
// work) and before the completions are settled.
class PortCloser {
 public:
  PortCloser();
  ~PortCloser();
  PortCloser(const PortCloser&) = delete;
  PortCloser& operator=(const PortCloser&) = delete;

  // From any thread (the engine's): closes `port`, then runs `then`.
  void close(std::shared_ptr<Port> port, std::function<void()> then);

 private:
  struct Job {
    std::shared_ptr<Port> port;
    std::function<void()> then;
  };
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vpc::addon
