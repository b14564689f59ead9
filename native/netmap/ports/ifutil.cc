#include "ports/ifutil.h"

#include "proto/inet.h"

#include <dirent.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>

namespace vpc {

int ctl_socket() { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

static void fill_name(ifreq* ifr, const std::string& name) {
  std::memset(ifr, 0, sizeof(*ifr));
  std::strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

int if_index(int ctl, const std::string& name) {
  ifreq ifr;
  fill_name(&ifr, name);
  if (ioctl(ctl, SIOCGIFINDEX, &ifr) < 0) return -errno;
  return ifr.ifr_ifindex;
}

int if_flags(int ctl, const std::string& name, unsigned* flags) {
  ifreq ifr;
  fill_name(&ifr, name);
  if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0) return -errno;
  *flags = unsigned(uint16_t(ifr.ifr_flags));
  return 0;
}

int if_set_flags(int ctl, const std::string& name, unsigned set, unsigned clear) {
  ifreq ifr;
  fill_name(&ifr, name);
  if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0) return -errno;
  ifr.ifr_flags = short((uint16_t(ifr.ifr_flags) | set) & ~clear);
  if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0) return -errno;
  return 0;
}

int if_hwaddr(int ctl, const std::string& name, Mac* mac) {
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(ctl, SIOCGIFHWADDR, &ifr) < 0) return -errno;
  *mac = mac_load(reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data));
  return 0;
}

bool if_hwaddr_follow(int ctl, const std::string& name, Mac* mac) {
  Mac m = 0;
  if (if_hwaddr(ctl, name, &m) < 0 || m == 0 || m == *mac) return false;
  *mac = m;
  return true;
}

int if_mtu(int ctl, const std::string& name) {
  ifreq ifr;
  fill_name(&ifr, name);
  if (ioctl(ctl, SIOCGIFMTU, &ifr) < 0) return -errno;
  return ifr.ifr_mtu;
}

uint32_t if_rx_queues(int ctl, const std::string& name) {
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr;
  fill_name(&ifr, name);
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (ioctl(ctl, SIOCETHTOOL, &ifr) == 0 && ch.rx_count + ch.combined_count > 0) return ch.rx_count + ch.combined_count;
  // Drivers without get_channels (tap, bridge, bond) still list their queues.
  uint32_t n = 0;
  if (DIR* d = opendir(("/sys/class/net/" + name + "/queues").c_str())) {
    while (dirent* e = readdir(d))
      if (std::strncmp(e->d_name, "rx-", 3) == 0) ++n;
    closedir(d);
  }
  return n;
}

uint64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

std::string if_driver(int ctl, const std::string& name) {
  ethtool_drvinfo di{};
  di.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr;
  fill_name(&ifr, name);
  ifr.ifr_data = reinterpret_cast<char*>(&di);
  if (ioctl(ctl, SIOCETHTOOL, &ifr) < 0) return "";
  return std::string(di.driver, strnlen(di.driver, sizeof(di.driver)));
}

// ---------------------------------------------------------------- offloads

static int ethtool_rw(int ctl, const std::string& name, uint32_t cmd, uint32_t* value, bool set) {
  struct ethtool_value ev{};
  ev.cmd = cmd;
  ev.data = set ? *value : 0;
  ifreq ifr;
  fill_name(&ifr, name);
  ifr.ifr_data = reinterpret_cast<char*>(&ev);
  if (ioctl(ctl, SIOCETHTOOL, &ifr) < 0) return -errno;
  if (!set) *value = ev.data;
  return 0;
}

bool if_gro(int ctl, const std::string& name) {
  uint32_t v = 0;
  return ethtool_rw(ctl, name, ETHTOOL_GGRO, &v, false) == 0 && v != 0;
}

int if_set_offload(int ctl, const std::string& name, uint32_t cmd, bool on) {
  uint32_t v = on ? 1 : 0;
  return ethtool_rw(ctl, name, cmd, &v, true);
}

namespace {
struct Offload {
  const char* name;
  uint32_t get, set;
  uint32_t flag;  // for ETHTOOL_GFLAGS: the bit; 0 for boolean commands
  bool receive;   // a receive-side offload (merges frames before the switch sees them)
};
// Order matters: GRO/LRO and the segmentation offloads go first, tx
// checksumming last (TSO depends on it); restore runs in reverse.
const Offload kOffloads[] = {
    {"gro", ETHTOOL_GGRO, ETHTOOL_SGRO, 0, true},
    {"lro", ETHTOOL_GFLAGS, ETHTOOL_SFLAGS, ETH_FLAG_LRO, true},
    {"gso", ETHTOOL_GGSO, ETHTOOL_SGSO, 0, false},
    {"tso", ETHTOOL_GTSO, ETHTOOL_STSO, 0, false},
    {"tx-checksum", ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM, 0, false},
};
}  // namespace

// ---------------------------------------------------------------- journal

static std::mutex g_journal_mu;
static std::string g_journal_dir;
static constexpr char kJournalPrefix[] = "offloads-";

void offloads_journal(const std::string& dir) {
  std::lock_guard<std::mutex> g(g_journal_mu);
  g_journal_dir = dir;
}

// Writes a record (temporary file, then rename: a record is whole or
// absent).
std::string journal_record(const std::string& name, const std::string& text) {
  std::string dir;
  {
    std::lock_guard<std::mutex> g(g_journal_mu);
    dir = g_journal_dir;
  }
  if (dir.empty()) return "";
  const std::string path = dir + "/" + name, tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return "";
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "";
  }
  return path;
}

std::vector<std::string> journal_records(const std::string& dir, const std::string& prefix, std::string* err) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (errno != ENOENT && err) *err = dir + ": " + std::strerror(errno);
    return names;
  }
  std::vector<std::string> partial;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(prefix, 0) != 0) continue;
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) partial.push_back(n);  // never completed
    else names.push_back(n);
  }
  closedir(d);
  for (const std::string& n : partial) std::remove((dir + "/" + n).c_str());
  return names;
}

static std::string journal_write(const OffloadSaved& s) {
  std::string text = std::to_string(s.ifindex) + "\n";
  for (const auto& [cmd, value] : s.changed) text += std::to_string(cmd) + " " + std::to_string(value) + "\n";
  return journal_record(kJournalPrefix + s.ifname, text);
}

std::vector<std::string> offloads_recover(int ctl, const std::string& dir, std::string* err) {
  std::vector<std::string> restored;
  for (const std::string& n : journal_records(dir, kJournalPrefix, err)) {
    const std::string path = dir + "/" + n;
    OffloadSaved s;
    s.ifname = n.substr(sizeof(kJournalPrefix) - 1);
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) continue;
    unsigned long cmd, value;
    bool ok = std::fscanf(f, "%d", &s.ifindex) == 1;
    while (ok && std::fscanf(f, "%lu %lu", &cmd, &value) == 2) s.changed.push_back({uint32_t(cmd), uint32_t(value)});
    std::fclose(f);
    if (ok && !s.changed.empty() && if_index(ctl, s.ifname) == s.ifindex) {
      offloads_restore(ctl, &s);
      restored.push_back(s.ifname);
    }
    std::remove(path.c_str());
  }
  return restored;
}

std::string offloads_off(int ctl, const std::string& ifname, OffloadSaved* saved, bool receive_only) {
  saved->ifname = ifname;
  saved->ifindex = if_index(ctl, ifname);
  saved->changed.clear();
  saved->journal.clear();
  // First what is on, recorded in the journal before anything changes.
  std::vector<const Offload*> on;
  for (const Offload& o : kOffloads) {
    if (receive_only && !o.receive) continue;
    uint32_t v = 0;
    if (ethtool_rw(ctl, ifname, o.get, &v, false) < 0) continue;  // not supported: nothing to do
    if (!(o.flag ? (v & o.flag) != 0 : v != 0)) continue;
    on.push_back(&o);
    saved->changed.push_back({o.set, v});
  }
  if (!saved->changed.empty()) saved->journal = journal_write(*saved);
  std::string done, failed;
  for (size_t i = 0; i < on.size();) {
    const Offload& o = *on[i];
    uint32_t v = saved->changed[i].second;
    uint32_t nv = o.flag ? (v & ~o.flag) : 0;
    if (ethtool_rw(ctl, ifname, o.set, &nv, true) < 0) {
      failed += std::string(" ") + o.name;
      on.erase(on.begin() + long(i));
      saved->changed.erase(saved->changed.begin() + long(i));
      continue;
    }
    done += std::string(" ") + o.name;
    ++i;
  }
  if (saved->changed.empty() && !saved->journal.empty()) {
    std::remove(saved->journal.c_str());
    saved->journal.clear();
  }
  std::string out = done.empty() ? "none were on" : "turned off:" + done;
  if (!failed.empty()) out += "; could not turn off:" + failed;
  return out;
}

void offloads_restore(int ctl, OffloadSaved* saved) {
  if (saved->changed.empty()) return;
  // Only the interface we changed: a new one with the same name is left alone.
  if (if_index(ctl, saved->ifname) == saved->ifindex) {
    for (auto it = saved->changed.rbegin(); it != saved->changed.rend(); ++it) {
      uint32_t v = it->second;
      ethtool_rw(ctl, saved->ifname, it->first, &v, true);
    }
  }
  saved->changed.clear();
  if (!saved->journal.empty()) std::remove(saved->journal.c_str());
  saved->journal.clear();
}

// ---------------------------------------------------------------- claims

static std::mutex g_claim_mu;
// name -> the abstract socket that holds it for the host (-1: none could be made)
static std::map<std::string, int>& claims() {
  static std::map<std::string, int> m;
  return m;
}

// The abstract socket name that stands for a claim (a hash for a long one:
// the name must fit sun_path).
static std::string claim_address(const std::string& name) {
  std::string a = "vpc-switch.claim." + name;
  if (a.size() > 100) {
    char h[24];
    std::snprintf(h, sizeof h, "%016zx", std::hash<std::string>{}(name));
    a = "vpc-switch.claim.#" + std::string(h);
  }
  return a;
}

Claim claim_interface(const std::string& name) {
  std::lock_guard<std::mutex> g(g_claim_mu);
  if (claims().count(name)) return Claim::kThisProcess;
  // The host-wide half: an abstract unix socket in the calling thread's
  // network namespace (where the interface is). The kernel releases it when
  // the process ends, however it ends; `ss -xlp` names the holder.
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string a = claim_address(name);
    std::memcpy(sa.sun_path + 1, a.data(), a.size());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), socklen_t(offsetof(sockaddr_un, sun_path) + 1 + a.size())) < 0) {
      const int e = errno;
      ::close(fd);
      if (e == EADDRINUSE) return Claim::kOtherProcess;
      fd = -1;  // no host-wide claim (odd, e.g. out of descriptors): the process's still holds
    }
  }
  claims().emplace(name, fd);
  return Claim::kOk;
}

void release_interface(const std::string& name) {
  std::lock_guard<std::mutex> g(g_claim_mu);
  auto it = claims().find(name);
  if (it == claims().end()) return;
  if (it->second >= 0) ::close(it->second);
  claims().erase(it);
}

std::string claim_refused(const std::string& what, Claim c) {
  if (c == Claim::kOtherProcess)
    return what + " is attached by another process of this switch (another vpcd: `ss -xlp | grep vpc-switch.claim` names it); " +
           "stop that one, or use another interface";
  return what + " is already attached to another port (or the uplink): delete that one first (one port per interface)";
}

// ---------------------------------------------------------------- checksums

bool locate_l4_checksum(const uint8_t* f, uint32_t len, L4Checksum* out) {
  uint32_t off = kEthHeaderLen;
  if (len < off) return false;
  uint16_t type = load_be16(f + 12);
  if (type == kEtherTypeVlan || type == 0x88a8) {
    if (len < off + kVlanTagLen) return false;
    type = load_be16(f + 16);
    off += kVlanTagLen;
  }
  L4Checksum c;
  if (type == kEtherTypeIpv4) {
    if (len < off + kIpv4HeaderLen) return false;
    const uint32_t ihl = (f[off] & 0x0F) * 4u, total = load_be16(f + off + 2);
    if (ihl < kIpv4HeaderLen || total < ihl || off + total > len) return false;
    if (load_be16(f + off + 6) & 0x3FFF) return false;  // a fragment: the checksum covers the whole datagram
    c.proto = f[off + 9];
    c.l4 = off + ihl;
    c.end = off + total;
    c.pseudo = csum_pseudo4(f + off + 12, f + off + 16, uint16_t(c.end - c.l4), c.proto);
  } else if (type == kEtherTypeIpv6) {
    if (len < off + kIpv6HeaderLen) return false;
    c.proto = f[off + 6];
    c.l4 = off + kIpv6HeaderLen;
    c.end = c.l4 + load_be16(f + off + 4);
    if (c.end > len) return false;
    c.pseudo = csum_pseudo6(f + off + 8, f + off + 24, c.end - c.l4, c.proto);
  } else {
    return false;
  }
  if (c.proto == kIpProtoTcp) c.field = c.l4 + 16;
  else if (c.proto == kIpProtoUdp) c.field = c.l4 + 6;
  else return false;
  if (c.field + 2 > c.end) return false;
  *out = c;
  return true;
}

bool finish_partial_checksum(uint8_t* f, uint32_t len) {
  L4Checksum c;
  if (!locate_l4_checksum(f, len, &c)) return false;
  // The field already holds the folded pseudo-header sum: sum over the whole
  // segment including it, complement, store. (UDP: 0 is sent as 0xFFFF.)
  uint16_t sum = csum_fold(csum_partial(f + c.l4, c.end - c.l4, 0));
  if (c.proto == kIpProtoUdp && sum == 0) sum = 0xFFFF;
  store_be16(f + c.field, sum);
  return true;
}

std::string sys_error(const std::string& what, int err, const char* capability) {
  std::string m = what + ": " + std::strerror(err);
  if ((err == EPERM || err == EACCES) && capability)
    m += std::string(": the switch needs ") + capability +
         " (run it as root, or grant it with: setcap cap_net_raw,cap_net_admin+ep on the node binary)";
  return m;
}

}  // namespace vpc
