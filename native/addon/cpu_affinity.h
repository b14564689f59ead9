// Keeps the rest of the process off the CPU its engine is pinned to.
//
// A pinned engine spins for a while after each frame, yielding the CPU at
// every empty look (docs/design/engine.md); any other thread of the process
// on that CPU (Node's main thread building a metrics scrape, libuv's pool,
// V8's workers) then runs in the middle of the engine's turn, for as long as
// it likes. Measured with 40 idle afpacket ports and 20,000 frames/s: p99.9
// 3.5-3.7 ms with Node's threads free to use the engine's CPU, 0.39-0.98 ms
// in four runs of five with them kept off it (docs/design/engine.md).
#pragma once

#include <sys/types.h>

#include <vector>

namespace vpc::addon {

class CpuVacate {
 public:
  // Takes `cpu` out of the affinity of every thread of this process that may
  // run on it and on at least one other CPU (a thread pinned to one CPU is
  // left alone), and remembers which. Threads created afterwards by those
  // threads inherit it. Best effort: a thread that cannot be moved is
  // skipped. Returns how many threads were moved.
  int vacate(int cpu);
  // Gives the CPU back to the threads vacate() moved that still exist.
  void restore();

 private:
  int cpu_ = -1;
  std::vector<pid_t> moved_;
};

}  // namespace vpc::addon
