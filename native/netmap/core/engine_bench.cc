// Core switching benchmark: pipe ports, 64-byte frames, one engine thread,
// generation and sinking on one other thread.
//
//   engine_bench [--seconds S] [--json FILE] [--only NAME] [--callgrind]
//
// Cases
//   unicast-1k   1,000 MACs (500 behind each of two ports), learning on, every
//                frame from a different source than the one before
//   unicast-1m-table  1,000,000 MACs in the table, traffic over 1,000 of them
//   unicast-1m   1,000,000 MACs in the table and traffic over all of them
//                (every lookup misses the CPU caches: the worst case)
//   single-flow  one source, one destination (the last-source cache's case)
//   bcast-4      broadcast from one port to 4 others (Mpps of input frames)
//   housekeeping the engine's 100 ms housekeeping tick (aging, VTEPs, link
//                checks) with one switch of two pipe ports, in tables sized
//                for 4,096 and for 65,536 switches and VTEPs: ns per tick
//                (median and max of 1,000 ticks, the engine stepped here).
//                Every port waits while it runs. Not in --callgrind.
//
// Throughput mode runs the engine on its own thread (pinned to CPU 0, the
// generator/sink thread to CPU 1) for a fixed time and counts frames the sinks
// received. --callgrind runs a fixed number of frames with the engine stepped
// on the main thread (Engine::run_once), so that
//   valgrind --tool=callgrind --toggle-collect='vpc::Engine::process*'
//            --toggle-collect='vpc::Engine::flush_tx*' engine_bench --callgrind
// counts exactly the instructions the hot path spends per frame.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/bench_util.h"
#include "core/engine.h"
#include "core/limits.h"
#include "proto/ethernet.h"

using namespace vpc;
using namespace vpc::bench;

namespace {

struct Case {
  const char* name;
  uint32_t macs;      // total MACs in the table, half behind the ingress, half behind the egress
  uint32_t outputs;   // egress ports
  bool broadcast;
  uint32_t flows;     // flows the generator cycles through (0: every host pair)
};

const Case kCases[] = {
    {"unicast-1k", 1000, 1, false, 0},
    {"unicast-1m-table", 1000000, 1, false, 500},
    {"unicast-1m", 1000000, 1, false, 0},
    {"single-flow", 2, 1, false, 0},
    {"bcast-4", 2, 4, true, 0},
};

struct Figures {
  std::string name;
  double mpps = 0;
  double ns_per_packet = 0;
  double engine_ns_per_packet = 0;
  double mean_batch = 0;
  uint64_t packets = 0;
  uint64_t fdb_entries = 0;
};


Mac host_mac(uint32_t side, uint32_t i) { return 0x020000000000ull | (Mac(side) << 32) | i; }


struct Topology {
  std::unique_ptr<Engine> engine;
  SwitchId sw = 0;
  std::unique_ptr<PipePeer> in;
  std::vector<std::unique_ptr<PipePeer>> outs;
};

Topology build(const Case& c) {
  EngineOptions o;
  o.pool.count = 32768;
  o.busy_poll = true;
  o.cpu = 0;
  o.event_mask = 0;  // learning a million MACs should not be a million JS events
  Topology t;
  t.engine = std::make_unique<Engine>(o);
  auto cs = cmd(CmdOp::kCreateSwitch);
  cs->switch_cfg.vni = 100;
  cs->switch_cfg.mac_limit = uint32_t(limit::switchMacLimit.max);  // the 1M-MAC cases fill it exactly
  cs->switch_cfg.fdb_capacity = c.macs * 2;
  vpc::Result rs = t.engine->execute(std::move(cs));
  if (!rs.ok()) {
    fprintf(stderr, "create switch: %s\n", rs.message.c_str());
    exit(1);
  }
  t.sw = rs.id;
  for (uint32_t p = 0; p <= c.outputs; ++p) {
    auto cp = cmd(CmdOp::kCreatePort);
    PipePair pair = t.engine->new_pipe(1024);
    cp->new_port = std::move(pair.port);
    cp->untagged = t.sw;
    vpc::Result r = t.engine->execute(std::move(cp));
    if (!r.ok()) {
      fprintf(stderr, "create port: %s\n", r.message.c_str());
      exit(1);
    }
    (p == 0 ? t.in : t.outs.emplace_back()) = std::move(pair.peer);
  }
  return t;
}

// The generator's flows: a 16-byte header per flow (dst, src, ethertype and
// two payload bytes), written into each buffer with one store so that the
// generator, not the switch, is never what the benchmark measures.
struct Flows {
  std::vector<std::array<uint8_t, 16>> hdr;
  uint32_t next = 0;
  Flows(uint32_t half, bool bcast) : hdr(half) {
    for (uint32_t h = 0; h < half; ++h) {
      uint8_t* f = hdr[h].data();
      std::memset(f, 0, 16);
      mac_store(f, bcast ? kMacBroadcast : host_mac(1, h));
      mac_store(f + 6, host_mac(0, h));
      store_be16(f + 12, kEtherTypeIpv4);
    }
  }
};

// Fills up to `n` descriptors with 64-byte frames, flow after flow.
uint32_t fill(PipePeer& peer, Pkt* pk, uint32_t n, Flows& fl) {
  BufferPool& pool = peer.pool();
  uint32_t got = 0;
  for (; got < n; ++got) {
    uint32_t idx;
    if (!peer.cache().alloc(&idx)) break;
    pk[got] = Pkt{idx, pool.headroom(), 64};
  }
  constexpr uint32_t kAhead = 8;
  for (uint32_t i = 0; i < got && i < kAhead; ++i) __builtin_prefetch(pool.frame(pk[i]), 1);
  uint32_t h = fl.next, half = uint32_t(fl.hdr.size());
  for (uint32_t i = 0; i < got; ++i) {
    if (i + kAhead < got) __builtin_prefetch(pool.frame(pk[i + kAhead]), 1);
    std::memcpy(pool.frame(pk[i]), fl.hdr[h].data(), 16);
    if (++h == half) h = 0;
  }
  fl.next = h;
  return got;
}

// Gives back descriptors the ring did not take and rewinds the flow cursor.
void unsend(PipePeer& peer, Pkt* pk, uint32_t from, uint32_t to, Flows& fl) {
  for (uint32_t i = from; i < to; ++i) peer.cache().free(pk[i].buf);
  uint32_t half = uint32_t(fl.hdr.size()), back = (to - from) % half;
  fl.next = (fl.next + half - back) % half;
}


// Teaches the switch where every destination host lives by sending one frame
// from each of them on the egress port (flooded back to the ingress).
void prime_side(Topology& t, const Case& c, bool threaded, PipePeer& out, PipePeer& other, uint32_t side);

void prime(Topology& t, const Case& c, bool threaded) {
  if (c.broadcast) return;
  prime_side(t, c, threaded, *t.outs[0], *t.in, 1);
  // With fewer flows than hosts, the ingress side's hosts would never be
  // learned by the traffic itself: teach them too, so the table really holds
  // every MAC.
  if (c.flows) prime_side(t, c, threaded, *t.in, *t.outs[0], 0);
}

void prime_side(Topology& t, const Case& c, bool threaded, PipePeer& out, PipePeer& other, uint32_t side) {
  uint32_t half = c.macs / 2;
  BufferPool& pool = out.pool();
  Pkt pk[kMaxBurst];
  for (uint32_t h = 0; h < half;) {
    uint32_t n = 0;
    for (; n < kMaxBurst && h + n < half; ++n) {
      uint32_t idx;
      if (!out.cache().alloc(&idx)) break;
      pk[n] = Pkt{idx, pool.headroom(), 64};
      uint8_t* f = pool.frame(pk[n]);
      mac_store(f, host_mac(side ^ 1, 0));
      mac_store(f + 6, host_mac(side, h + n));
      store_be16(f + 12, kEtherTypeIpv4);
    }
    uint32_t sent = out.send(pk, n);
    for (uint32_t i = sent; i < n; ++i) out.cache().free(pk[i].buf);
    h += sent;
    if (!threaded) t.engine->run_once();
    drain(other);
    drain(out);
  }
  // Let the engine finish and check the table really holds the hosts.
  uint32_t want = side == 1 ? half : 2 * half;
  for (int i = 0; i < 2000; ++i) {
    if (!threaded) t.engine->run_once();
    drain(other);
    if (cnt_read(t.engine->switch_counters(t.sw).c[size_t(SwitchCounter::fdb_entries)]) >= want) break;
    if (threaded) usleep(1000);
  }
}

Figures run_throughput(const Case& c, double seconds) {
  Topology t = build(c);
  t.engine->start();
  pin(1);
  prime(t, c, true);
  Flows fl(c.flows ? c.flows : std::max<uint32_t>(c.macs / 2, 1), c.broadcast);
  Pkt pk[kMaxBurst];
  uint64_t received = 0;
  const EngineCounterBlock& ec = t.engine->engine_counters();
  auto loop = [&](double secs, bool count) {
    auto t0 = std::chrono::steady_clock::now();
    auto end = t0 + std::chrono::duration<double>(secs);
    uint64_t got = 0;
    uint32_t spins = 0;
    while (true) {
      uint32_t n = fill(*t.in, pk, kMaxBurst, fl);
      uint32_t sent = t.in->send(pk, n);
      if (sent < n) unsend(*t.in, pk, sent, n, fl);
      for (auto& o : t.outs) got += drain(*o);
      drain(*t.in);
      if ((++spins & 63) == 0 && std::chrono::steady_clock::now() >= end) break;
    }
    if (count) received = got;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  loop(0.3, false);  // warm up: caches, FDB slots, TLB
  uint64_t pk0 = cnt_read(ec.c[size_t(EngineCounter::packets)]);
  uint64_t busy0 = cnt_read(ec.c[size_t(EngineCounter::busy_ns)]);
  uint64_t b0 = cnt_read(ec.c[size_t(EngineCounter::batches)]);
  double elapsed = loop(seconds, true);
  uint64_t pk1 = cnt_read(ec.c[size_t(EngineCounter::packets)]);
  uint64_t busy1 = cnt_read(ec.c[size_t(EngineCounter::busy_ns)]);
  uint64_t b1 = cnt_read(ec.c[size_t(EngineCounter::batches)]);
  Figures r;
  r.name = c.name;
  uint64_t delivered_frames = c.broadcast ? received / c.outputs : received;
  r.packets = delivered_frames;
  r.mpps = double(delivered_frames) / elapsed / 1e6;
  r.ns_per_packet = r.mpps > 0 ? 1e3 / r.mpps : 0;
  r.engine_ns_per_packet = pk1 > pk0 ? double(busy1 - busy0) / double(pk1 - pk0) : 0;
  r.mean_batch = b1 > b0 ? double(pk1 - pk0) / double(b1 - b0) : 0;
  r.fdb_entries = cnt_read(t.engine->switch_counters(t.sw).c[size_t(SwitchCounter::fdb_entries)]);
  t.engine->stop();
  return r;
}

// Deterministic run for callgrind: fixed frame count, engine stepped here.
Figures run_callgrind(const Case& c, uint64_t frames) {
  Topology t = build(c);
  prime(t, c, false);
  Flows fl(c.flows ? c.flows : std::max<uint32_t>(c.macs / 2, 1), c.broadcast);
  Pkt pk[kMaxBurst];
  uint64_t got = 0;
  // One untimed lap over every flow so each FDB slot has been touched once.
  for (uint64_t done = 0; done < frames;) {
    uint32_t n = fill(*t.in, pk, kMaxBurst, fl);
    uint32_t sent = t.in->send(pk, n);
    if (sent < n) unsend(*t.in, pk, sent, n, fl);
    done += sent;
    t.engine->run_once();
    for (auto& o : t.outs) got += drain(*o);
    drain(*t.in);
  }
  Figures r;
  r.name = c.name;
  r.packets = frames;
  r.fdb_entries = cnt_read(t.engine->switch_counters(t.sw).c[size_t(SwitchCounter::fdb_entries)]);
  return r;
}

struct Tick {
  uint32_t table_size;  // max_switches and max_vteps
  double median_ns;
  double max_ns;
};

// The housekeeping tick, stepped with the caller's clock: each step is 100 ms
// later, so each runs one tick (and one look at two idle pipe ports).
Tick run_housekeeping(uint32_t table_size) {
  EngineOptions o;
  o.pool.count = 4096;
  o.max_switches = table_size;
  o.max_vteps = table_size;
  o.event_mask = 0;
  Engine engine(o);
  auto cs = cmd(CmdOp::kCreateSwitch);
  cs->switch_cfg.vni = 100;
  SwitchId sw = engine.execute(std::move(cs)).id;
  std::vector<std::unique_ptr<PipePeer>> peers;
  for (int p = 0; p < 2; ++p) {
    auto cp = cmd(CmdOp::kCreatePort);
    PipePair pair = engine.new_pipe(256);
    cp->new_port = std::move(pair.port);
    cp->untagged = sw;
    if (!engine.execute(std::move(cp)).ok()) {
      fprintf(stderr, "create port failed\n");
      exit(1);
    }
    peers.push_back(std::move(pair.peer));
  }
  constexpr int kTicks = 1000;
  std::vector<double> ns;
  ns.reserve(kTicks);
  uint64_t t = 0;
  for (int i = 0; i < kTicks + 10; ++i) {
    t += 100ull * 1000 * 1000;
    auto a = std::chrono::steady_clock::now();
    engine.run_once_at(t);
    auto b = std::chrono::steady_clock::now();
    if (i >= 10) ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());  // after warm-up
  }
  std::sort(ns.begin(), ns.end());
  return Tick{table_size, ns[ns.size() / 2], ns.back()};
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const double seconds = args.seconds;
  const std::string& json = args.json;
  const std::string& only = args.only;
  const bool callgrind = args.callgrind;
  const uint64_t cg_frames = args.frames;
  std::vector<Figures> results;
  std::vector<Tick> ticks;
  if (!callgrind && (only.empty() || only == "housekeeping")) {
    for (uint32_t size : {4096u, 65536u}) {
      Tick k = run_housekeeping(size);
      printf("housekeeping (tables of %u switches and VTEPs): %8.0f ns/tick median, %8.0f max\n", k.table_size,
             k.median_ns, k.max_ns);
      ticks.push_back(k);
    }
  }
  for (const Case& c : kCases) {
    if (!only.empty() && only != c.name) continue;
    if (callgrind) {
      Figures r = run_callgrind(c, cg_frames);
      printf("%-12s %llu frames stepped (fdb %llu entries)\n", r.name.c_str(), (unsigned long long)r.packets,
             (unsigned long long)r.fdb_entries);
      results.push_back(r);
      continue;
    }
    Figures r = run_throughput(c, seconds);
    printf("%-12s %7.2f Mpps  %6.1f ns/frame  engine %5.1f ns/frame  batch %5.1f  fdb %llu\n", r.name.c_str(),
           r.mpps, r.ns_per_packet, r.engine_ns_per_packet, r.mean_batch, (unsigned long long)r.fdb_entries);
    fflush(stdout);
    results.push_back(r);
  }
  if (!json.empty()) {
    FILE* f = fopen(json.c_str(), "w");
    if (!f) {
      perror(json.c_str());
      return 1;
    }
    fprintf(f, "{\n  \"bench\": \"core\",\n  \"mode\": \"%s\",\n  \"frame_bytes\": 64,\n  \"machine\": %s,\n  \"cases\": [\n",
            callgrind ? "callgrind" : "throughput", machine_json().c_str());
    for (size_t i = 0; i < results.size(); ++i) {
      const Figures& r = results[i];
      fprintf(f,
              "    {\"name\": \"%s\", \"mpps\": %.3f, \"ns_per_packet\": %.2f, \"engine_ns_per_packet\": %.2f, "
              "\"mean_batch\": %.1f, \"packets\": %llu, \"fdb_entries\": %llu}%s\n",
              r.name.c_str(), r.mpps, r.ns_per_packet, r.engine_ns_per_packet, r.mean_batch,
              (unsigned long long)r.packets, (unsigned long long)r.fdb_entries, i + 1 < results.size() ? "," : "");
    }
    fprintf(f, "  ],\n  \"housekeeping\": [\n");
    for (size_t i = 0; i < ticks.size(); ++i)
      fprintf(f, "    {\"table_size\": %u, \"ns_per_tick_median\": %.0f, \"ns_per_tick_max\": %.0f}%s\n",
              ticks[i].table_size, ticks[i].median_ns, ticks[i].max_ns, i + 1 < ticks.size() ? "," : "");
    fprintf(f, "  ]\n}\n");
    fclose(f);
  }
  return 0;
}
