// The shared tables of core/command.h and core/limits.h: names generated from
// the X-macros, the apply dispatch, and the ranges the engine enforces.
#include <set>
#include <string>

#include "core/command.h"
#include "core/limits.h"
#include "core/test_util.h"

namespace vpc {
namespace {

using testutil::EngineFixture;

TEST(CommandTables, NamesComeFromTheRows) {
  EXPECT_STREQ(status_code(Status::kOk), "OK");
  EXPECT_STREQ(status_code(Status::kLimitExceeded), "LIMIT_EXCEEDED");
  EXPECT_STREQ(status_code(Status::kInternal), "INTERNAL");
  EXPECT_STREQ(command_op_name(CmdOp::kCreateSwitch), "createSwitch");
  EXPECT_STREQ(command_op_name(CmdOp::kBarrier), "barrier");
  EXPECT_STREQ(event_type_name(EventType::kLearned), "learned");
  EXPECT_STREQ(event_type_name(EventType::kLink), "link");
  // Out-of-table values do not index past the tables.
  EXPECT_STREQ(status_code(Status(200)), "INTERNAL");
  EXPECT_STREQ(command_op_name(CmdOp(200)), "unknown");
}

TEST(CommandTables, EventBitsCoverTheTable) {
  EXPECT_EQ(kAllEvents, 0x3Fu);  // six event types
  uint32_t all = 0;
#define ROW(e, name) all |= event_bit(EventType::e);
  VPC_EVENT_TYPES(ROW)
#undef ROW
  EXPECT_EQ(all, kAllEvents);
}

TEST(CommandTables, OpNamesAreUnique) {
  std::set<std::string> names;
#define ROW(e, op, handler) EXPECT_TRUE(names.insert(#op).second) << #op;
  VPC_COMMAND_OPS(ROW)
#undef ROW
}

TEST(Limits, RowsAreConsistent) {
  for (const Limit& l : kLimits) {
    EXPECT_LE(l.min, l.max) << l.id;
    EXPECT_TRUE(l.contains(l.min) && l.contains(l.max)) << l.id;
    EXPECT_FALSE(l.contains(l.min - 1) || l.contains(l.max + 1)) << l.id;
  }
  EXPECT_EQ(range_error(limit::vni), "vni: must be in 1..16777215");
  EXPECT_EQ(range_error(limit::vlan, "vlans[2].vlan"), "vlans[2].vlan: must be in 1..4094");
}

class CommandLimits : public EngineFixture {};

// The engine refuses exactly what the control plane's validation refuses
// (src/dataplane/validate.ts reads the same rows): the switch MAC limit was
// 1,000,000 there and 16,777,216 here before they shared a table.
TEST_F(CommandLimits, SwitchMacLimitAndAging) {
  SwitchConfig cfg;
  cfg.vni = 10;
  cfg.mac_limit = uint32_t(limit::switchMacLimit.max) + 1;
  Result r = try_create_switch(cfg);
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_EQ(r.message, "macLimit: must be in 1..1000000");
  cfg.mac_limit = uint32_t(limit::switchMacLimit.max);
  cfg.aging_ms = uint32_t(limit::agingSeconds.max * 1000 + 1);
  r = try_create_switch(cfg);
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_EQ(r.message, "agingMs: must be in 1000..1000000000");
  cfg.aging_ms = uint32_t(limit::agingSeconds.max * 1000);
  EXPECT_TRUE(try_create_switch(cfg).ok());
  cfg.vni = uint32_t(limit::vni.max) + 1;
  EXPECT_EQ(try_create_switch(cfg).status, Status::kInvalidArgument);
}

TEST_F(CommandLimits, PortMacLimitAndMtu) {
  SwitchId s = create_switch(10);
  PortConfig pc;
  pc.mac_limit = uint32_t(limit::portMacLimit.max) + 1;
  Result r = try_add_port(s, pc);
  EXPECT_EQ(r.status, Status::kInvalidArgument);
  EXPECT_EQ(r.message, "macLimit: must be in 0..1000000");
  pc.mac_limit = 0;
  pc.mtu = uint32_t(limit::mtu.min) - 1;
  EXPECT_EQ(try_add_port(s, pc).status, Status::kInvalidArgument);
  pc.mtu = uint32_t(limit::mtu.min);
  EXPECT_TRUE(try_add_port(s, pc).ok());
}

TEST_F(CommandLimits, BarrierIsATableRow) {
  Result r = run(cmd(CmdOp::kBarrier));
  EXPECT_TRUE(r.ok());
}

}  // namespace
}  // namespace vpc
