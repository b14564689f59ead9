// The kernel fast path, Linux side (design in kpath.h).
#include "ports/kpath.h"

#include <cerrno>
#include <cstring>
#include <vector>

#ifdef VPC_HAVE_KPATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "ports/ifutil.h"
#include "ports/link_watch.h"

#include "kpath_object.h"  // generated: the compiled kpath.bpf.c (CMakeLists.txt)
#endif

namespace vpc {

#ifndef VPC_HAVE_KPATH

std::unique_ptr<KernelPath> KernelPath::load(uint32_t, uint32_t, uint32_t, uint32_t, std::string* why) {
  *why = "not built in (clang and libbpf were not found at build time: on Debian `apt-get install clang libbpf-dev`, and rebuild)";
  return nullptr;
}
KernelPath::~KernelPath() = default;
bool KernelPath::set_global(const KpathGlobal&) { return false; }
bool KernelPath::set_port(uint32_t, const KpathPort&) { return false; }
bool KernelPath::set_ifindex(int, uint32_t) { return false; }
bool KernelPath::clear_ifindex(int) { return false; }
bool KernelPath::set_gen(uint32_t, uint32_t) { return false; }
bool KernelPath::set_entry(uint32_t, Mac, uint32_t, uint32_t) { return false; }
bool KernelPath::erase_entry(uint32_t, Mac) { return false; }
bool KernelPath::last_use_ns(uint32_t, Mac, uint64_t*) { return false; }
KpathStats KernelPath::stats(uint32_t) { return {}; }
void KernelPath::clear_stats(uint32_t) {}
bool KernelPath::set_vni(uint32_t, uint32_t) { return false; }
bool KernelPath::erase_vni(uint32_t) { return false; }
bool KernelPath::set_remote(uint32_t, const KpathRemote&) { return false; }
void KernelPath::erase_remote(uint32_t) {}
KpathStats KernelPath::remote_stats(uint32_t) { return {}; }
int KernelPath::map_fd(const char*) const { return -1; }
bool kpath_attach_socket(int, int, std::string* why) {
  *why = "not built in";
  return false;
}
bool kpath_attach_tc(int, int, KpathHook*, std::string* why) {
  *why = "not built in";
  return false;
}
bool kpath_attach_xdp(int, int, KpathHook* h) {
  h->xdp_why = "not built in";
  return false;
}
bool kpath_attach_gro(int, int, KpathHook* h) {
  h->gro_why = "not built in";
  return false;
}
void kpath_detach_gro(KpathHook*) {}
void kpath_detach_tc(KpathHook*) {}

#else

namespace {

// Mirrors struct kp_key and kp_dest of kpath.bpf.c.
struct Key {
  uint32_t sw;
  uint8_t mac[6];
  uint16_t pad;
};
struct Dest {
  uint32_t port;
  uint32_t gen;
  uint64_t last_ns;
};

Key key_of(uint32_t sw, Mac mac) {
  Key k{};
  k.sw = sw;
  for (int i = 0; i < 6; ++i) k.mac[i] = uint8_t(mac >> (40 - 8 * i));
  return k;
}

int quiet(enum libbpf_print_level, const char*, va_list) { return 0; }

// BPF_TCX_INGRESS (Linux 6.6); Debian 12's headers predate it.
constexpr int kTcxIngress = 46;

// Whether this kernel lets an XDP program call bpf_xdp_adjust_meta, which
// the uplink's XDP stage needs (kp_meta). Some builds refuse it to every
// XDP program ("program of this type cannot use helper"); libbpf's own
// probe, in the version Debian 12 has, takes that refusal for support. So
// one tiny program is loaded to ask. Only a refusal of the helper itself
// says no: any other failure (no privilege) is left to the real load to
// report.
bool xdp_meta_allowed() {
  const bpf_insn prog[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0},                         // r2 = 0
      {BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_xdp_adjust_meta},           // adjust_meta(ctx, 0)
      {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 2},                         // return XDP_PASS
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  char log[4096] = "";
  LIBBPF_OPTS(bpf_prog_load_opts, o, .log_level = 1, .log_size = sizeof log, .log_buf = log);
  const int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "kp_probe", "Dual BSD/GPL", prog, 4, &o);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  return !(strstr(log, "cannot use helper") || strstr(log, "unknown func") || strstr(log, "invalid func"));
}

}  // namespace

std::unique_ptr<KernelPath> KernelPath::load(uint32_t max_ports, uint32_t max_switches, uint32_t max_entries,
                                             uint32_t max_remotes, std::string* why) {
  libbpf_set_print(quiet);
  std::unique_ptr<KernelPath> kp(new KernelPath());
  struct Size {
    const char* map;
    uint32_t n;
  // kp_ifx: every port's interface, and the uplink's GRO stage's receiving end.
  } sizes[] = {{"kp_ports", max_ports},     {"kp_ifx", max_ports + 1},      {"kp_fdb", max_entries},
               {"kp_gen", max_switches},    {"kp_stats", max_ports},    {"kp_global", 1},
               {"kp_vni", max_switches},    {"kp_remote", max_remotes}, {"kp_rstats", max_remotes}};
  // The object, its maps sized; the uplink's XDP stage only where the
  // kernel lets XDP programs have metadata.
  bpf_object* obj = bpf_object__open_mem(kKpathObject, kKpathObjectLen, nullptr);
  if (!obj) {
    *why = std::string("BPF object: ") + strerror(errno);
    return nullptr;
  }
  kp->obj_ = obj;
  for (const Size& s : sizes) {
    bpf_map* m = bpf_object__find_map_by_name(obj, s.map);
    if (!m || bpf_map__set_max_entries(m, s.n ? s.n : 1)) {
      *why = std::string("BPF map ") + s.map + ": cannot size it";
      return nullptr;
    }
  }
  if (!xdp_meta_allowed()) {
    bpf_program* x = bpf_object__find_program_by_name(obj, "kp_xdp");
    if (x) bpf_program__set_autoload(x, false);
    kp->xdp_refused_ = true;
  }
  int r = bpf_object__load(obj);
  if (r) {
    // EACCES is the verifier refusing a program (EPERM: missing privilege):
    // a defect of this build, said as such.
    *why = std::string("loading the BPF programs: ") + strerror(-r) +
           (r == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN, or root)"
                        : r == -EACCES ? " (the kernel's verifier refused them: a defect of this build)" : "");
    return nullptr;
  }
  auto prog = [&](const char* n) {
    bpf_program* p = bpf_object__find_program_by_name(obj, n);
    return p ? bpf_program__fd(p) : -1;
  };
  auto map = [&](const char* n) { return bpf_object__find_map_fd_by_name(obj, n); };
  kp->tc_prog_ = prog("kp_tc");
  kp->sock_prog_ = prog("kp_sock");
  kp->xdp_prog_ = kp->xdp_refused_ ? -1 : prog("kp_xdp");
  kp->ports_ = map("kp_ports");
  kp->ifx_ = map("kp_ifx");
  kp->fdb_ = map("kp_fdb");
  kp->gen_ = map("kp_gen");
  kp->stats_ = map("kp_stats");
  kp->global_ = map("kp_global");
  kp->vni_ = map("kp_vni");
  kp->remote_ = map("kp_remote");
  kp->rstats_ = map("kp_rstats");
  kp->ncpu_ = libbpf_num_possible_cpus();
  if (kp->tc_prog_ < 0 || kp->sock_prog_ < 0 || (kp->xdp_prog_ < 0 && !kp->xdp_refused_) || kp->ncpu_ < 1) {
    *why = "BPF object: programs missing";
    return nullptr;
  }
  return kp;
}

KernelPath::~KernelPath() {
  if (obj_) bpf_object__close(obj_);
}

int KernelPath::map_fd(const char* name) const {
  const bpf_map* m = bpf_object__find_map_by_name(obj_, name);
  return m ? bpf_map__fd(m) : -1;
}

bool KernelPath::set_global(const KpathGlobal& g) {
  uint32_t k = 0;
  return bpf_map_update_elem(global_, &k, &g, BPF_ANY) == 0;
}

bool KernelPath::set_port(uint32_t port, const KpathPort& p) {
  return bpf_map_update_elem(ports_, &port, &p, BPF_ANY) == 0;
}

bool KernelPath::set_ifindex(int ifindex, uint32_t port) {
  uint32_t k = uint32_t(ifindex);
  return bpf_map_update_elem(ifx_, &k, &port, BPF_ANY) == 0;
}

bool KernelPath::clear_ifindex(int ifindex) {
  uint32_t k = uint32_t(ifindex);
  return bpf_map_delete_elem(ifx_, &k) == 0;
}

bool KernelPath::set_gen(uint32_t sw, uint32_t gen) { return bpf_map_update_elem(gen_, &sw, &gen, BPF_ANY) == 0; }

bool KernelPath::set_entry(uint32_t sw, Mac mac, uint32_t port, uint32_t gen) {
  Key k = key_of(sw, mac);
  Dest d{port, gen, 0};
  return bpf_map_update_elem(fdb_, &k, &d, BPF_ANY) == 0;
}

bool KernelPath::erase_entry(uint32_t sw, Mac mac) {
  Key k = key_of(sw, mac);
  return bpf_map_delete_elem(fdb_, &k) == 0;
}

bool KernelPath::last_use_ns(uint32_t sw, Mac mac, uint64_t* ns) {
  Key k = key_of(sw, mac);
  Dest d{};
  if (bpf_map_lookup_elem(fdb_, &k, &d)) return false;
  *ns = d.last_ns;
  return true;
}

KpathStats KernelPath::sum_stats(int map, uint32_t key) {
  std::vector<KpathStats> per(static_cast<size_t>(ncpu_));
  KpathStats sum;
  if (bpf_map_lookup_elem(map, &key, per.data())) return sum;
  for (const KpathStats& s : per) {
    sum.rx_packets += s.rx_packets;
    sum.rx_bytes += s.rx_bytes;
    sum.tx_packets += s.tx_packets;
    sum.tx_bytes += s.tx_bytes;
    sum.errors += s.errors;
  }
  return sum;
}

KpathStats KernelPath::stats(uint32_t port) { return sum_stats(stats_, port); }
KpathStats KernelPath::remote_stats(uint32_t member) { return sum_stats(rstats_, member); }

void KernelPath::clear_stats(uint32_t port) {
  std::vector<KpathStats> zero(static_cast<size_t>(ncpu_));
  bpf_map_update_elem(stats_, &port, zero.data(), BPF_ANY);
}

bool KernelPath::set_vni(uint32_t vni, uint32_t sw) { return bpf_map_update_elem(vni_, &vni, &sw, BPF_ANY) == 0; }
bool KernelPath::erase_vni(uint32_t vni) { return bpf_map_delete_elem(vni_, &vni) == 0; }

bool KernelPath::set_remote(uint32_t member, const KpathRemote& r) {
  std::vector<KpathStats> zero(static_cast<size_t>(ncpu_));
  int e = bpf_map_update_elem(rstats_, &member, zero.data(), BPF_NOEXIST);
  if (e && errno != EEXIST) return false;
  if (bpf_map_update_elem(remote_, &member, &r, BPF_ANY) == 0) return true;
  bpf_map_delete_elem(rstats_, &member);
  return false;
}

void KernelPath::erase_remote(uint32_t member) {
  bpf_map_delete_elem(remote_, &member);
  bpf_map_delete_elem(rstats_, &member);
}

bool kpath_attach_socket(int fd, int prog_fd, std::string* why) {
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd, sizeof(prog_fd)) == 0) return true;
  *why = std::string("socket filter (SO_ATTACH_BPF): ") + strerror(errno);
  return false;
}

bool kpath_attach_tc(int ifindex, int prog_fd, KpathHook* h, std::string* why) {
  int fd = bpf_link_create(prog_fd, ifindex, bpf_attach_type(kTcxIngress), nullptr);
  if (fd < 0) {
    int e = errno;
    *why = std::string("TC ingress program (TCX link): ") + strerror(e) +
           (e == EINVAL ? " (needs Linux 6.6 or later)" : "");
    return false;
  }
  h->link_fd = fd;
  return true;
}

bool kpath_attach_xdp(int ifindex, int prog_fd, KpathHook* h) {
  LIBBPF_OPTS(bpf_link_create_opts, o);
  o.flags = XDP_FLAGS_DRV_MODE;
  int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &o);
  if (fd < 0) {
    int e = errno;
    h->xdp_why = std::string("XDP (driver mode, link): ") + strerror(e) +
                 (e == EBUSY || e == EEXIST ? " (another XDP program is on the interface)"
                  : e == EOPNOTSUPP ? " (the driver has no XDP of its own, or not with its current offloads)"
                                    : "");
    return false;
  }
  h->xdp_fd = fd;
  h->xdp_why.clear();
  return true;
}

namespace {
std::string gro_stage_name(int uplink_ifindex, char end) { return "vpcgro" + std::to_string(uplink_ifindex) + end; }

void gro_stage_delete(const std::string& a) {
  const int nl = rtnl_socket();
  if (nl < 0) return;
  link_delete(nl, a);  // its other end goes with it
  close(nl);
}

// The stage's ends get no link-local address, so the kernel sends nothing
// of its own through them (best effort: a read-only /proc/sys leaves them
// one, and what it sends into the stage is not switched).
void no_ipv6(const std::string& name) {
  if (FILE* f = std::fopen(("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6").c_str(), "w")) {
    std::fputs("1", f);
    std::fclose(f);
  }
}

// Four queues per CPU (kp_tc sends each frame on one of its CPU's, by the
// frame's flow hash): the receiving end runs one NAPI per queue, each on
// the CPU that fills it, as gro_cells keeps one cell per CPU. With one
// queue, CPUs would fill a ring that one of them drains, and it overflows
// (measured: 19,425 drops in a 5 s run with four streams; one queue per CPU
// 3,096; four 175). Online CPUs: a VM's possible ones may be many more (a
// higher CPU's queue number wraps around onto these).
uint32_t stage_queues() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 4 : n > 256 ? 1024 : uint32_t(n) * 4;
}
}  // namespace

bool kpath_attach_gro(int uplink_ifindex, int prog_fd, KpathHook* h) {
  if (h->gro_link_fd >= 0) return true;
  const std::string a = gro_stage_name(uplink_ifindex, 'a'), b = gro_stage_name(uplink_ifindex, 'b');
  const int nl = rtnl_socket(), ctl = ctl_socket();
  auto fail = [&](const std::string& what, int e) {
    h->gro_why = "GRO stage: " + what + ": " + strerror(e);
    if (nl >= 0) link_delete(nl, a);
    if (nl >= 0) close(nl);
    if (ctl >= 0) close(ctl);
    h->gro_tx = h->gro_rx = 0;
    return false;
  };
  if (nl < 0 || ctl < 0) return fail("netlink or control socket", errno);
  link_delete(nl, a);  // a pair a killed process left
  const uint32_t queues = stage_queues();
  if (int e = veth_pair_create(nl, a, b, 65535, queues); e < 0) return fail("creating the veth pair " + a + "/" + b, -e);
  no_ipv6(a);
  no_ipv6(b);
  // GRO happens at b's NAPI, which a veth runs only with GRO on, and only
  // for frames from an end without TSO.
  if (int e = if_set_offload(ctl, a, ETHTOOL_STSO, false); e < 0) return fail("tso off on " + a, -e);
  if (int e = if_set_offload(ctl, b, ETHTOOL_SGRO, true); e < 0) return fail("gro on on " + b, -e);
  for (const std::string& n : {b, a})
    if (int e = if_set_flags(ctl, n, IFF_UP, 0); e < 0) return fail("setting " + n + " up", -e);
  h->gro_tx = if_index(ctl, a);
  h->gro_rx = if_index(ctl, b);
  if (h->gro_tx <= 0 || h->gro_rx <= 0) return fail("its interfaces' indexes", ENODEV);
  const int fd = bpf_link_create(prog_fd, h->gro_rx, bpf_attach_type(kTcxIngress), nullptr);
  if (fd < 0) return fail("TC ingress program on " + b, errno);
  h->gro_link_fd = fd;
  h->gro_name = a;
  h->gro_why.clear();
  close(nl);
  close(ctl);
  return true;
}

void kpath_detach_gro(KpathHook* h) {
  if (h->gro_link_fd >= 0) {
    close(h->gro_link_fd);
    h->gro_link_fd = -1;
  }
  if (!h->gro_name.empty()) gro_stage_delete(h->gro_name);
  h->gro_name.clear();
  h->gro_tx = h->gro_rx = 0;
}

void kpath_detach_tc(KpathHook* h) {
  if (h->link_fd >= 0) close(h->link_fd);
  if (h->xdp_fd >= 0) close(h->xdp_fd);
  h->link_fd = h->xdp_fd = -1;
  kpath_detach_gro(h);
}

#endif  // VPC_HAVE_KPATH

}  // namespace vpc
