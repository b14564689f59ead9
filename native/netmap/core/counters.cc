#include "core/counters.h"

namespace vpc {

#define VPC_INFO_ROW(name, kind, help) {#name, CounterKind::kind, help},
const CounterInfo kPortCounterInfo[kPortCounters] = {VPC_PORT_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kSwitchCounterInfo[kSwitchCounters] = {VPC_SWITCH_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kEngineCounterInfo[kEngineCounters] = {VPC_ENGINE_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kDropInfo[kDrops] = {VPC_DROP_REASONS(VPC_INFO_ROW)};
const CounterInfo kPeerCounterInfo[kPeerCounters] = {VPC_PEER_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kSwitchPeerCounterInfo[kSwitchPeerCounters] = {VPC_SWITCH_PEER_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kUplinkCounterInfo[kUplinkCounters] = {VPC_UPLINK_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kVirtqCounterInfo[kVirtqCounters] = {VPC_VIRTQ_COUNTERS(VPC_INFO_ROW)};
const CounterInfo kVirtqDropInfo[kVirtqDrops] = {VPC_VIRTQ_DROPS(VPC_INFO_ROW)};
#undef VPC_INFO_ROW

const char* counter_kind_name(CounterKind k) { return k == CounterKind::gauge ? "gauge" : "counter"; }

}  // namespace vpc
