// Test helpers without a test framework: frame building, bounded waits, and
// EngineHarness, which owns an Engine plus the outside ends of its pipe ports.
// The GoogleTest fixture (core/test_util.h) builds on these; the fuzzers
// (native/fuzz) and other tools use them directly. Nothing here asserts:
// every helper returns what happened and the caller decides.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "proto/ethernet.h"

namespace vpc::testutil {

using Bytes = std::vector<uint8_t>;

// A pipe port behind a wrapper that passes everything on; a test's wrapper
// overrides the one call it changes.
class WrappedPipe : public Port {
 public:
  explicit WrappedPipe(std::unique_ptr<Port> inner) : inner_(std::move(inner)) {}
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override { return inner_->rx_burst(pkts, max); }
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override { return inner_->tx_burst(pkts, n); }
  void attach(Waker* w) override { inner_->attach(w); }
  void detach() override { inner_->detach(); }

 protected:
  std::unique_ptr<Port> inner_;
};

// Locally administered unicast MACs: 02:00:00:00:xx:yy.
inline Mac host_mac(uint32_t i) { return 0x020000000000ull | (i & 0xFFFFFFFFull); }
constexpr Mac kMcastMac = 0x01005E000001ull;  // 01:00:5e:00:00:01 (IPv4 multicast)

// Builds a frame of exactly `len` bytes: dst, src, an optional 802.1Q tag
// (vid >= 0; pcp in the top 3 bits of the TCI), the ethertype, then a payload
// pattern. When len is shorter than the header, the header is truncated (runts).
inline Bytes make_frame(Mac dst, Mac src, uint16_t len = 64, int vid = -1,
                        uint16_t ethertype = kEtherTypeIpv4, uint8_t pcp = 0, uint8_t seed = 0) {
  Bytes hdr(18, 0);
  mac_store(hdr.data(), dst);
  mac_store(hdr.data() + 6, src);
  size_t hl = kEthHeaderLen;
  if (vid >= 0) {
    store_be16(hdr.data() + 12, kEtherTypeVlan);
    store_be16(hdr.data() + 14, uint16_t((uint16_t(pcp) << 13) | (uint16_t(vid) & 0x0FFF)));
    store_be16(hdr.data() + 16, ethertype);
    hl = kEthHeaderLen + kVlanTagLen;
  } else {
    store_be16(hdr.data() + 12, ethertype);
  }
  Bytes f(len);
  for (size_t i = 0; i < len; ++i) f[i] = i < hl ? hdr[i] : uint8_t((i * 7 + seed) & 0xFF);
  return f;
}

// The same frame with its 802.1Q tag removed / inserted (reference model).
inline Bytes strip_tag(const Bytes& f) {
  Bytes o(f.begin(), f.begin() + 12);
  o.insert(o.end(), f.begin() + 16, f.end());
  return o;
}
inline Bytes add_tag(const Bytes& f, uint16_t vid) {
  Bytes o(f.begin(), f.begin() + 12);
  o.push_back(0x81);
  o.push_back(0x00);
  o.push_back(uint8_t(vid >> 8));
  o.push_back(uint8_t(vid));
  o.insert(o.end(), f.begin() + 12, f.end());
  return o;
}

inline std::string mac_string(Mac m) {
  char b[18];
  mac_format(m, b);
  return b;
}

// Polls pred every millisecond until it holds or timeout_ms passes.
template <class F>
bool wait_until(F&& pred, int timeout_ms = 2000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Spin-wait backoff for the stress tests: yields first, then sleeps briefly,
// so a waiting thread gives its core away on a loaded 2-core machine (a bare
// yield does not, when busy processes compete for the same cores).
struct Backoff {
  uint32_t n = 0;
  void pause() {
    if (++n < 64) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  void reset() { n = 0; }
};

// Receives everything queued on a peer, copies the bytes out and frees the buffers.
inline void drain_peer(PipePeer& peer, std::vector<Bytes>* out) {
  Pkt pk[kMaxBurst];
  for (uint32_t n; (n = peer.recv(pk, kMaxBurst)) != 0;) {
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t* f = peer.pool().frame(pk[i]);
      if (out) out->emplace_back(f, f + pk[i].len);
      peer.cache().free(pk[i].buf);
    }
  }
}

inline EngineOptions small_engine_options() {
  EngineOptions o;
  o.pool.count = 4096;
  o.pool.hugepages = false;
  o.max_ports = 64;
  o.max_switches = 64;
  return o;
}

// Owns an Engine and the outside end of every pipe port it creates. Starts
// stopped (commands apply inline); call engine().start() to move packets, or
// step it with engine().run_once() / run_once_at().
class EngineHarness {
 public:
  ~EngineHarness() { destroy_all(); }
  PipeOptions uplink_pipe;  // what the uplink's pipe takes (try_uplink)

  void make_engine(const EngineOptions& o) {
    destroy_all();
    engine_ = std::make_unique<Engine>(o);
    pool_ = engine_->pool();
  }
  // Stops the engine, destroys it and then the peers. Safe to call twice.
  void destroy_all() {
    if (engine_) engine_->stop();
    engine_.reset();
    peers_.clear();
  }

  Engine& engine() { return *engine_; }

  Result run(std::unique_ptr<Command> c) { return engine_->execute(std::move(c)); }

  static std::unique_ptr<Command> cmd(CmdOp op) {
    auto c = std::make_unique<Command>();
    c->op = op;
    return c;
  }

  Result try_create_switch(const SwitchConfig& cfg) {
    auto c = cmd(CmdOp::kCreateSwitch);
    c->switch_cfg = cfg;
    return run(std::move(c));
  }

  // Creates a pipe port; keeps its peer. Returns the result (id on success).
  Result try_add_port(SwitchId untagged, const PortConfig& pc = {},
                      std::vector<VlanMapping> vlans = {}, uint32_t ring = 256, const PipeOptions& po = {}) {
    auto pair = engine_->new_pipe(ring, po);
    auto c = cmd(CmdOp::kCreatePort);
    c->new_port = std::move(pair.port);
    c->untagged = untagged;
    c->vlans = std::move(vlans);
    c->port_cfg = pc;
    Result r = run(std::move(c));
    if (r.ok()) peers_[r.id] = std::move(pair.peer);
    return r;
  }
  // Creates the uplink (VTEP) on a pipe port; keeps its peer.
  // `wrap`: the uplink's pipe port behind a test's wrapper (WrappedPipe).
  Result try_uplink(const UplinkConfig& u, Mac mac, uint32_t mtu = 1500, uint32_t ring = 1024,
                    std::unique_ptr<Port> (*wrap)(std::unique_ptr<Port>) = nullptr) {
    auto pair = engine_->new_pipe(ring, uplink_pipe);
    auto c = cmd(CmdOp::kCreateUplink);
    c->new_port = wrap ? wrap(std::move(pair.port)) : std::move(pair.port);
    c->port_cfg.mac = mac;
    c->port_cfg.mtu = mtu;
    c->uplink_cfg = u;
    Result r = run(std::move(c));
    if (r.ok()) peers_[r.id] = std::move(pair.peer);
    return r;
  }
  Result delete_port(PortId p) {
    auto c = cmd(CmdOp::kDeletePort);
    c->port = p;
    return run(std::move(c));
  }
  Result add_static(SwitchId s, PortId p, Mac m) {
    auto c = cmd(CmdOp::kAddStaticMac);
    c->sw = s;
    c->port = p;
    c->mac = m;
    return run(std::move(c));
  }
  Result dump_fdb(SwitchId s) {
    auto c = cmd(CmdOp::kDumpFdb);
    c->sw = s;
    return run(std::move(c));
  }
  // The dump entry for mac, or nullptr.
  static const FdbDumpEntry* find_entry(const std::vector<FdbDumpEntry>& v, Mac m) {
    for (const auto& e : v)
      if (e.mac == m) return &e;
    return nullptr;
  }

  PipePeer& peer(PortId p) { return *peers_.at(p); }
  bool has_peer(PortId p) const { return peers_.count(p) != 0; }
  std::unique_ptr<PipePeer> take_peer(PortId p) {
    auto it = peers_.find(p);
    std::unique_ptr<PipePeer> out = std::move(it->second);
    peers_.erase(it);
    return out;
  }

  // Counters.
  uint64_t pc(PortId p, PortCounter k) { return cnt_read(engine_->port_counters(p).c[size_t(k)]); }
  uint64_t pdrop(PortId p, Drop d) { return cnt_read(engine_->port_counters(p).drops[size_t(d)]); }
  uint64_t sc(SwitchId s, SwitchCounter k) { return cnt_read(engine_->switch_counters(s).c[size_t(k)]); }
  uint64_t sdrop(SwitchId s, Drop d) { return cnt_read(engine_->switch_counters(s).drops[size_t(d)]); }

  // Copies frames into port p's pipe; returns how many it accepted.
  uint32_t send_frames(PortId p, const std::vector<Bytes>& frames) {
    std::vector<const uint8_t*> ptrs;
    std::vector<uint16_t> lens;
    for (const Bytes& f : frames) {
      ptrs.push_back(f.data());
      lens.push_back(uint16_t(f.size()));
    }
    return peer(p).send_copy(ptrs.data(), lens.data(), uint32_t(frames.size()));
  }

  std::vector<Bytes> recv(PortId p) {
    std::vector<Bytes> out;
    drain_peer(peer(p), &out);
    return out;
  }

  // Events, accumulated across drains.
  std::vector<Event>& events() {
    Event buf[256];
    for (uint32_t n; (n = engine_->drain_events(buf, 256)) != 0;) events_.insert(events_.end(), buf, buf + n);
    return events_;
  }
  size_t count_events(EventType t) {
    size_t k = 0;
    for (const Event& e : events())
      if (e.type == t) ++k;
    return k;
  }
  std::vector<Event> events_of(EventType t) {
    std::vector<Event> out;
    for (const Event& e : events())
      if (e.type == t) out.push_back(e);
    return out;
  }

  std::unique_ptr<Engine> engine_;
  std::shared_ptr<BufferPool> pool_;
  std::map<PortId, std::unique_ptr<PipePeer>> peers_;
  std::vector<Event> events_;
};

}  // namespace vpc::testutil
