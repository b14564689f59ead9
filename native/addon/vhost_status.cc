// What a vhost-user port shows to JavaScript: the negotiated features, the
// queues, the memory regions (portStatus().vhost) and the per-queue
// counters (stats().backend[].queues, for the Prometheus families).
#include "convert.h"
#include "ports/vhost_user.h"

namespace vpc::addon {

static Napi::Object QueueCounters(Napi::Env env, const VirtqCounters& q, bool drops) {
  Napi::Object o = Napi::Object::New(env);
  if (drops) {
    for (size_t i = 0; i < kVirtqDrops; ++i) o.Set(kVirtqDropInfo[i].name, Napi::Number::New(env, double(cnt_read(q.drops[i]))));
  } else {
    for (size_t i = 0; i < kVirtqCounters; ++i) o.Set(kVirtqCounterInfo[i].name, Napi::Number::New(env, double(cnt_read(q.c[i]))));
  }
  return o;
}

static std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

void AddVhostStatus(Napi::Env env, Napi::Object& out, const PortStatus& st) {
  if (!st.vhost) return;
  const VhostStatus& v = *st.vhost;
  Napi::Object o = Napi::Object::New(env);
  o.Set("socket", v.socket);
  o.Set("mode", v.client ? "client" : "server");
  o.Set("connected", Napi::Boolean::New(env, v.connected.load(std::memory_order_relaxed)));
  const uint64_t f = v.features.load(std::memory_order_relaxed);
  o.Set("features", Hex(f));
  o.Set("featureNames", virtio_feature_names(f));
  o.Set("protocolFeatures", Hex(v.protocol_features.load(std::memory_order_relaxed)));
  o.Set("deviceStatus", Napi::Number::New(env, v.device_status.load(std::memory_order_relaxed)));
  o.Set("maxQueuePairs", Napi::Number::New(env, v.max_pairs));
  o.Set("connects", Napi::Number::New(env, double(v.connects.load(std::memory_order_relaxed))));
  o.Set("disconnects", Napi::Number::New(env, double(v.disconnects.load(std::memory_order_relaxed))));
  o.Set("messages", Napi::Number::New(env, double(v.messages.load(std::memory_order_relaxed))));
  o.Set("refused", Napi::Number::New(env, double(v.refused.load(std::memory_order_relaxed))));
  Napi::Object drops = Napi::Object::New(env);
  for (size_t i = 0; i < kVhostDrops; ++i)
    drops.Set(kVhostDropNames[i], Napi::Number::New(env, double(v.drops[i].load(std::memory_order_relaxed))));
  o.Set("connectionDrops", drops);
  o.Set("watcherErrors", Napi::Number::New(env, double(v.watcher_errors.load(std::memory_order_relaxed))));
  std::vector<VhostStatus::Queue> qs;
  std::vector<VhostStatus::Region> rs;
  v.layout(&qs, &rs);
  Napi::Array qa = Napi::Array::New(env, qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    const VhostStatus::Queue& q = qs[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", Napi::Number::New(env, q.index));
    x.Set("role", (q.index & 1) ? "guest-tx" : "guest-rx");
    x.Set("size", Napi::Number::New(env, q.size));
    x.Set("enabled", Napi::Boolean::New(env, q.enabled));
    x.Set("started", Napi::Boolean::New(env, q.started));
    x.Set("ready", Napi::Boolean::New(env, q.ready));
    x.Set("broken", Napi::Boolean::New(env, q.broken));
    x.Set("lastAvail", Napi::Number::New(env, q.last_avail));
    x.Set("usedIdx", Napi::Number::New(env, q.used_idx));
    x.Set("lastError", q.error);
    if (q.index < 2 * VhostStatus::kMaxPairs) {
      x.Set("counters", QueueCounters(env, v.q[q.index], false));
      x.Set("drops", QueueCounters(env, v.q[q.index], true));
    }
    qa.Set(uint32_t(i), x);
  }
  o.Set("queues", qa);
  Napi::Array ra = Napi::Array::New(env, rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("guestPhysical", Hex(rs[i].gpa));
    x.Set("size", Napi::Number::New(env, double(rs[i].size)));
    x.Set("frontendVirtual", Hex(rs[i].uva));
    ra.Set(uint32_t(i), x);
  }
  o.Set("regions", ra);
  out.Set("vhost", o);
}

Napi::Array VhostQueueStats(Napi::Env env, const PortStatus& st) {
  if (!st.vhost) return Napi::Array::New(env, 0);
  const VhostStatus& v = *st.vhost;
  const uint32_t n = 2 * v.max_pairs;
  Napi::Array a = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("queue", Napi::Number::New(env, i));
    x.Set("counters", QueueCounters(env, v.q[i], false));
    x.Set("drops", QueueCounters(env, v.q[i], true));
    a.Set(i, x);
  }
  return a;
}

}  // namespace vpc::addon
