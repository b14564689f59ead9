// The command dispatch: each command goes to the owner whose tables it
// changes (bridge/commands.cc, overlay/commands.cc). The few that change
// more than one owner's tables are composed here: a port is the core's slot
// and the bridge's memberships; deleting a switch or a static entry may
// leave a VTEP the overlay then releases.
//
// Runs on the engine thread between iterations (or on the caller's thread
// while the engine is stopped). Each command validates everything before it
// changes anything, so a failed command leaves the tables as they were.
#include <string>
#include <utility>
#include <vector>

#include "core/engine.h"

namespace vpc {

void Engine::apply_commands() {
  Command* c;
  // Bounded so that a command storm cannot starve the ports.
  for (int i = 0; i < 64 && cmdq_.pop(&c); ++i) {
    std::unique_ptr<Command> owned(c);
    apply(*owned);
    core_.engine_counters().add(EngineCounter::commands, 1);
  }
}

void Engine::apply(Command& c) {
  Result r;
  switch (c.op) {
#define VPC_COMMAND_APPLY_ROW(e, op, handler) \
  case CmdOp::e: r = handler(c); break;
    VPC_COMMAND_OPS(VPC_COMMAND_APPLY_ROW)
#undef VPC_COMMAND_APPLY_ROW
  }
  if (c.done) c.done(std::move(r));
}

// The handlers of VPC_COMMAND_OPS (core/command.h): each hands its command to
// the owner whose tables it changes, or composes owners (ports, below).
Result Engine::do_create_switch(Command& c) { return bridge_.create_switch(c.switch_cfg); }
Result Engine::do_set_switch(Command& c) { return bridge_.set_switch(c.sw, c.switch_cfg); }
Result Engine::do_delete_switch(Command& c) {
  Result r = bridge_.delete_switch(c.sw);
  if (r.ok()) core_.observer().forget(kNoId, c.sw);
  if (r.ok()) overlay_.release_unreferenced_peers();
  return r;
}
Result Engine::do_add_static(Command& c) { return bridge_.add_static(c.sw, c.port, c.mac); }
Result Engine::do_delete_static(Command& c) {
  Result r = bridge_.delete_static(c.sw, c.mac, c.evpn);
  if (r.ok()) overlay_.release_unreferenced_peers();
  return r;
}
Result Engine::do_dump_fdb(Command& c) { return bridge_.dump_fdb(c.sw); }
Result Engine::do_flush_fdb(Command& c) { return bridge_.flush_fdb(c.sw, c.port); }
Result Engine::do_create_uplink(Command& c) {
  bridge_.kpath_adopt(c);
  return overlay_.create_uplink(c);
}
Result Engine::do_delete_uplink(Command&) {
  const PortId up = overlay_.uplink_port();
  Result r = overlay_.delete_uplink();
  if (r.ok() && up != kNoId) core_.observer().forget(up, kNoId);
  return r;
}
Result Engine::do_add_peer(Command& c) { return overlay_.add_peer(c.sw, c.ip); }
Result Engine::do_delete_peer(Command& c) { return overlay_.delete_peer(c.sw, c.ip); }
Result Engine::do_add_remote_mac(Command& c) { return overlay_.add_remote_mac(c.sw, c.mac, c.ip, c.evpn); }
Result Engine::do_dump_neighbors(Command&) { return overlay_.dump_neighbors(); }
Result Engine::do_barrier(Command&) { return {}; }

// A port: the core opens the slot, the bridge creates its memberships.
Result Engine::do_create_port(Command& c) {
  bridge_.kpath_adopt(c);  // before any check: a failed command still hands it over
  if (!c.new_port) return Result::error(Status::kInvalidArgument, "port: no backend given");
  Result bad = core_.check_port_config(c.port_cfg, *c.new_port);
  if (!bad.ok()) return bad;
  // Validate every mapping before touching anything.
  std::vector<std::pair<uint16_t, SwitchId>> maps;
  bad = bridge_.check_join(c, &maps);
  if (!bad.ok()) return bad;
  if (!core_.has_free_port_slot()) return Result::error(Status::kLimitExceeded, "ports: maxPorts reached");
  bad = bridge_.check_members_free(maps.size());
  if (!bad.ok()) return bad;
  PortId pid = core_.open_port(std::move(c.new_port), c.port_cfg, false);
  bridge_.join(pid, maps, c.port_cfg, !c.vlans.empty());
  Result r;
  r.id = pid;
  return r;
}

Result Engine::do_set_port(Command& c) {
  if (c.port >= core_.max_ports() || !core_.port(c.port).in_use)
    return Result::error(Status::kNotFound, "port: no such port");
  Result bad = core_.check_port_config(c.port_cfg, *core_.port(c.port).port);
  if (!bad.ok()) return bad;
  PortState& ps = core_.port(c.port);
  Mac own = ps.cfg.mac;
  const std::vector<Mac> was_locked = ps.cfg.locked_macs;
  core_.set_port_config(ps, c.port_cfg);
  ps.cfg.mac = own;
  bridge_.set_port_learning(c.port, c.port_cfg);
  if (ps.cfg.locked_macs != was_locked) bridge_.port_security_changed(c.port, ps.cfg.locked_macs);
  bridge_.kpath_port_changed(c.port);
  return {};
}

Result Engine::do_delete_port(Command& c) {
  if (c.port >= core_.max_ports() || !core_.port(c.port).in_use)
    return Result::error(Status::kNotFound, "port: no such port");
  if (core_.port(c.port).is_uplink)
    return Result::error(Status::kInUse, "port: is the uplink; delete the uplink instead");
  bridge_.leave(c.port);
  Result r;
  r.closed_port = core_.close_port(c.port);
  core_.observer().forget(c.port, kNoId);
  return r;
}

}  // namespace vpc
