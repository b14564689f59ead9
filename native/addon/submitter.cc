#include "submitter.h"

#include <pthread.h>

#include <exception>

namespace vpc::addon {

Submitter::Submitter(Engine* engine) : engine_(engine) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "vpc-submit");
}

Submitter::~Submitter() { stop(); }

void Submitter::push(SubmitJob job) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Submitter::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::deque<SubmitJob> dropped;
  {
    std::lock_guard<std::mutex> g(mu_);
    dropped.swap(queue_);
  }
}

void Submitter::run() {
  for (;;) {
    SubmitJob job;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait(g, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    submit(job);
  }
}

void Submitter::submit(SubmitJob& job) {
  if (job.open) {
    Status failed = Status::kOk;
    std::string why;
    try {
      job.cmd->new_port = open_port(job.spec, job.opts, engine_->pool(), job.status);
    } catch (const PortError& e) {
      failed = e.status;
      why = e.what();
    } catch (const std::exception& e) {
      failed = Status::kSystem;
      why = job.spec.canonical + ": " + e.what();
    }
    if (failed != Status::kOk) {
      // Answered in its turn: a barrier takes the command's place in the
      // engine's queue and reports the failure once the commands before it
      // are done, so Promises still settle in the order they were made.
      auto barrier = std::make_unique<vpc::Command>();
      barrier->op = CmdOp::kBarrier;
      barrier->done = [report = std::move(job.open_failed), failed, why = std::move(why)](Result&&) mutable {
        report(failed, std::move(why));
      };
      engine_->submit(std::move(barrier));
      return;
    }
  }
  engine_->submit(std::move(job.cmd));
}

PortCloser::PortCloser() {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "vpc-close");
}

PortCloser::~PortCloser() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void PortCloser::close(std::shared_ptr<Port> port, std::function<void()> then) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(Job{std::move(port), std::move(then)});
  }
  cv_.notify_one();
}

void PortCloser::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait(g, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is closed
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.port.reset();
    if (job.then) job.then();
  }
}

}  // namespace vpc::addon
