// Port spec parsing (grammar in spec.h) and the opener that maps a spec to
// its backend.
#include "ports/spec.h"

#include <net/if.h>
#include <cctype>

#include "ports/afpacket.h"
#include "ports/afxdp.h"
#include "ports/netmap.h"
#include "ports/tap.h"
#include "ports/vhost_user.h"

namespace vpc {

const char* backend_name(PortBackend b) {
  switch (b) {
    case PortBackend::kAfPacket: return "afpacket";
    case PortBackend::kTap: return "tap";
    case PortBackend::kAfXdp: return "afxdp";
    case PortBackend::kNetmap: return "netmap";
    case PortBackend::kVale: return "vale";
    case PortBackend::kVhostUser: return "vhostuser";
  }
  return "?";
}

#define VPC_NAME_ROW(name, help) #name,
#define VPC_HELP_ROW(name, help) help,
const char* const PortStatus::kNames[PortStatus::kCount] = {VPC_KPORT_COUNTERS(VPC_NAME_ROW)};
const char* const PortStatus::kHelp[PortStatus::kCount] = {VPC_KPORT_COUNTERS(VPC_HELP_ROW)};
#undef VPC_HELP_ROW
#undef VPC_NAME_ROW

void PortStatus::set_error(std::string e) {
  std::lock_guard<std::mutex> g(mu_);
  last_error_ = std::move(e);
}

std::string PortStatus::error() const {
  std::lock_guard<std::mutex> g(mu_);
  return last_error_;
}

void PortStatus::set_offloads(std::string o) {
  std::lock_guard<std::mutex> g(mu_);
  offloads_ = std::move(o);
}

std::string PortStatus::offloads() const {
  std::lock_guard<std::mutex> g(mu_);
  return offloads_;
}

void PortStatus::set_io(std::string o) {
  std::lock_guard<std::mutex> g(mu_);
  io_ = std::move(o);
}

std::string PortStatus::io() const {
  std::lock_guard<std::mutex> g(mu_);
  return io_;
}

void PortStatus::set_link_reason(const std::string& ifname, unsigned flags) {
  const std::string down = "interface " + ifname + " is down (ip link set " + ifname + " up)";
  const std::string dark = "interface " + ifname + " has no carrier (its other end is down, or nothing holds it)";
  const std::string now = !(flags & IFF_UP) ? down : !(flags & IFF_RUNNING) ? dark : std::string();
  std::lock_guard<std::mutex> g(mu_);
  // Only its own words are replaced: an error of another kind stays.
  if (last_error_.empty() || last_error_ == down || last_error_ == dark) last_error_ = now;
}

void PortStatus::set_kernel_path(std::string k) {
  std::lock_guard<std::mutex> g(mu_);
  kernel_path_ = std::move(k);
}

std::string PortStatus::kernel_path() const {
  std::lock_guard<std::mutex> g(mu_);
  return kernel_path_;
}

static std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

static bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

bool valid_ifname(std::string_view name, const char* what, std::string* err) {
  if (name.empty()) {
    *err = std::string(what) + " is missing: give the name of an existing interface, e.g. veth0";
    return false;
  }
  if (name.size() > kIfNameMax) {
    *err = std::string(what) + " " + quoted(name) + " is " + std::to_string(name.size()) +
           " characters long; Linux allows at most 15: use a shorter name";
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i])) {
      std::string shown = std::isprint(static_cast<unsigned char>(name[i]))
                              ? std::string("'") + name[i] + "'"
                              : "byte " + std::to_string(unsigned(static_cast<unsigned char>(name[i])));
      *err = std::string(what) + " " + quoted(name) + " has " + shown + " at position " + std::to_string(i + 1) +
             ": use only letters, digits, '.', '-' and '_'";
      return false;
    }
  }
  if (name == "." || name == "..") {
    *err = std::string(what) + " " + quoted(name) + " is not a valid interface name";
    return false;
  }
  return true;
}

static bool parse_queue(std::string_view q, std::string_view text, int* out, std::string* err) {
  if (q.empty() || q.size() > 4) {
    *err = "queue in " + quoted(text) + " must be a number in 0..1023 after '@', e.g. afxdp:eth0@1";
    return false;
  }
  int v = 0;
  for (char c : q) {
    if (c < '0' || c > '9') {
      *err = "queue in " + quoted(text) + " must be a number in 0..1023 after '@', e.g. afxdp:eth0@1";
      return false;
    }
    v = v * 10 + (c - '0');
  }
  if (v > 1023) {
    *err = "queue in " + quoted(text) + " must be in 0..1023";
    return false;
  }
  *out = v;
  return true;
}

// vhostuser:PATH: an absolute path that fits sun_path (107 bytes and a NUL),
// printable, without spaces (they only cause trouble in command lines).
static bool parse_vhost_spec(std::string_view text, std::string_view path, PortSpec* out, std::string* err) {
  if (path.empty() || path[0] != '/') {
    *err = "vhost-user socket in " + quoted(text) + " must be an absolute path, e.g. vhostuser:/run/vpc/vm1.sock";
    return false;
  }
  if (path.size() > 107) {
    *err = "vhost-user socket path in " + quoted(text) + " is " + std::to_string(path.size()) +
           " bytes long; a unix socket path holds at most 107: use a shorter one";
    return false;
  }
  for (size_t i = 0; i < path.size(); ++i)
    if (!std::isgraph(static_cast<unsigned char>(path[i]))) {
      *err = "vhost-user socket path in " + quoted(text) + " has a space or control character at position " +
             std::to_string(i + 1) + ": use printable characters only";
      return false;
    }
  PortSpec s;
  s.backend = PortBackend::kVhostUser;
  s.ifname = std::string(path);
  s.canonical = "vhostuser:" + s.ifname;
  *out = std::move(s);
  return true;
}

bool parse_port_spec(std::string_view text, PortSpec* out, std::string* err) {
  const char* kForms = "afpacket:IF, afxdp:IF[@queue], tap:IF, netmap:IF[^|@queue], valeN:PORT or vhostuser:/PATH";
  if (text.empty()) {
    *err = std::string("port spec is empty: write one of ") + kForms;
    return false;
  }
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    *err = "port spec " + quoted(text) + " names no backend: write afpacket:" + std::string(text) +
           " (or afxdp:, tap:, netmap:)";
    return false;
  }
  std::string_view head = text.substr(0, colon), rest = text.substr(colon + 1);
  PortSpec s;
  if (head == "afpacket") s.backend = PortBackend::kAfPacket;
  else if (head == "tap") s.backend = PortBackend::kTap;
  else if (head == "afxdp") s.backend = PortBackend::kAfXdp;
  else if (head == "netmap") s.backend = PortBackend::kNetmap;
  else if (head == "vhostuser") return parse_vhost_spec(text, text.substr(colon + 1), out, err);
  else if (head.substr(0, 4) == "vale") {
    s.backend = PortBackend::kVale;
    std::string_view sw = head.substr(4);
    if (head.size() > kIfNameMax) {
      *err = "VALE switch name " + quoted(head) + " is longer than 15 characters";
      return false;
    }
    for (char c : sw)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
        *err = "VALE switch name " + quoted(head) + " may only continue with letters, digits and '_', e.g. vale0";
        return false;
      }
    s.vale = std::string(head);
  } else {
    *err = "unknown backend " + quoted(head) + " in " + quoted(text) + ": use " + kForms;
    return false;
  }

  std::string_view name = rest;
  if (s.backend == PortBackend::kAfXdp || s.backend == PortBackend::kNetmap) {
    size_t at = rest.find('@');
    if (at != std::string_view::npos) {
      if (!parse_queue(rest.substr(at + 1), text, &s.queue, err)) return false;
      name = rest.substr(0, at);
    } else if (s.backend == PortBackend::kNetmap && !rest.empty() && rest.back() == '^') {
      s.host_rings = true;
      name = rest.substr(0, rest.size() - 1);
    }
  } else if (rest.find('@') != std::string_view::npos || (!rest.empty() && rest.back() == '^')) {
    *err = "'@queue' and '^' are not used by " + std::string(head) + " ports (" + quoted(text) +
           "): they apply to afxdp: and netmap:";
    return false;
  }
  const char* what = s.backend == PortBackend::kVale ? "VALE port name" : "interface name";
  if (name.empty()) {
    *err = std::string(what) + " is missing after " + quoted(std::string(head) + ":") + ": write e.g. " +
           std::string(head) + (s.backend == PortBackend::kVale ? ":p1" : ":veth0");
    return false;
  }
  if (!valid_ifname(name, what, err)) return false;
  s.ifname = std::string(name);
  s.canonical = std::string(head) + ":" + s.ifname;
  if (s.host_rings) s.canonical += "^";
  if (s.queue >= 0) s.canonical += "@" + std::to_string(s.queue);
  *out = std::move(s);
  return true;
}

std::unique_ptr<Port> open_port(const PortSpec& spec, const KernelPortOptions& opts,
                                std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status) {
  status->backend = backend_name(spec.backend);
  status->spec = spec.canonical;
  status->ifname = spec.ifname;
  switch (spec.backend) {
    case PortBackend::kAfPacket: return AfPacketPort::open(spec.ifname, opts, std::move(pool), std::move(status));
    case PortBackend::kTap: return TapPort::open(spec.ifname, opts, std::move(pool), std::move(status));
    case PortBackend::kNetmap:
    case PortBackend::kVale: return NetmapPort::open(spec, opts, std::move(pool), std::move(status));
    case PortBackend::kAfXdp: return open_afxdp_port(spec, opts, std::move(pool), std::move(status));
    case PortBackend::kVhostUser: {
      VhostUserOptions v;
      v.socket = spec.ifname;
      v.client = opts.vhost_client;
      v.queue_pairs = opts.queues ? opts.queues : 1;
      v.burst = opts.burst ? std::min<uint32_t>(opts.burst, kMaxBurst) : kMaxBurst;
      v.wait_for_directory = opts.wait_for_interface;
      return VhostUserPort::open(v, std::move(pool), std::move(status));
    }
  }
  throw PortError(Status::kInvalidArgument, "unknown backend");
}

}  // namespace vpc
