// Software completion of partial checksums, and the queue count (ifutil.h).
#include "ports/ifutil.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace vpc {
namespace {

uint32_t add16(const uint8_t* p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i] << 8 | p[i + 1]);
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return uint16_t(s);
}

// Ethernet + IPv4 + TCP with `payload` bytes; the checksum field holds what
// Linux leaves for CHECKSUM_PARTIAL: the folded pseudo-header sum.
std::vector<uint8_t> partial_tcp4(size_t payload, bool vlan) {
  std::vector<uint8_t> f(14 + (vlan ? 4 : 0) + 20 + 20 + payload, 0);
  size_t o = 12;
  if (vlan) {
    f[o] = 0x81, f[o + 1] = 0x00, f[o + 3] = 10;
    o += 4;
  }
  f[o] = 0x08, f[o + 1] = 0x00;
  uint8_t* ip = &f[o + 2];
  uint16_t total = uint16_t(40 + payload);
  ip[0] = 0x45, ip[2] = uint8_t(total >> 8), ip[3] = uint8_t(total), ip[8] = 64, ip[9] = 6;
  ip[12] = 198, ip[13] = 18, ip[14] = 0, ip[15] = 1, ip[16] = 198, ip[17] = 18, ip[18] = 0, ip[19] = 2;
  uint8_t* tcp = ip + 20;
  tcp[0] = 0x30, tcp[1] = 0x39, tcp[12] = 0x50;
  for (size_t i = 0; i < payload; ++i) tcp[20 + i] = uint8_t(i * 7 + 1);
  uint32_t ph = add16(ip + 12, 8, 0) + 6 + uint32_t(20 + payload);
  uint16_t seed = fold(ph);
  tcp[16] = uint8_t(seed >> 8), tcp[17] = uint8_t(seed);
  return f;
}

bool tcp4_valid(const std::vector<uint8_t>& f, size_t ipoff) {
  const uint8_t* ip = &f[ipoff];
  size_t l4len = f.size() - ipoff - 20;
  uint32_t s = add16(ip + 12, 8, 0) + 6 + uint32_t(l4len);
  return fold(add16(ip + 20, l4len, s)) == 0xFFFF;
}

TEST(PartialChecksum, CompletesTcpOverIpv4) {
  for (size_t len : {0, 1, 100, 1459}) {
    auto f = partial_tcp4(len, false);
    EXPECT_FALSE(tcp4_valid(f, 14));
    ASSERT_TRUE(finish_partial_checksum(f.data(), uint32_t(f.size())));
    EXPECT_TRUE(tcp4_valid(f, 14)) << len;
  }
}

TEST(PartialChecksum, CompletesBehindAVlanTag) {
  auto f = partial_tcp4(33, true);
  ASSERT_TRUE(finish_partial_checksum(f.data(), uint32_t(f.size())));
  EXPECT_TRUE(tcp4_valid(f, 18));
}

TEST(PartialChecksum, LeavesWhatItCannotParse) {
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_FALSE(finish_partial_checksum(arp.data(), 60));
  auto f = partial_tcp4(10, false);
  EXPECT_FALSE(finish_partial_checksum(f.data(), 30));  // cut short
}

// lo has no ethtool channels: the count comes from sysfs (rx-0).
TEST(IfRxQueues, LoopbackHasOneAndAMissingInterfaceNone) {
  int ctl = ctl_socket();
  ASSERT_GE(ctl, 0);
  EXPECT_EQ(if_rx_queues(ctl, "lo"), 1u);
  EXPECT_EQ(if_rx_queues(ctl, "vpcnosuch0"), 0u);
  close(ctl);
}

// The offload journal's recovery never touches an interface it cannot
// vouch for: a record for a missing interface, or for one whose ifindex
// changed (same name, new interface), is deleted without effect; a
// half-written record (.tmp) is deleted. The real restore after kill -9 is
// test/ports/reliability.test.ts.
TEST(OffloadJournal, RecoveryDropsRecordsItCannotApply) {
  char tmpl[] = "/tmp/vpc-offload-journal-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/offloads-vpcnosuchif0") << "12345\n" << 0x29 << " 1\n";
  std::ofstream(dir + "/offloads-lo") << "999999\n" << 0x29 << " 1\n";  // lo, but another ifindex
  std::ofstream(dir + "/offloads-lo.tmp") << "1\n";
  std::ofstream(dir + "/unrelated") << "x";
  int ctl = ctl_socket();
  ASSERT_GE(ctl, 0);
  std::string err;
  EXPECT_TRUE(offloads_recover(ctl, dir, &err).empty());
  EXPECT_EQ(err, "");
  EXPECT_NE(access((dir + "/unrelated").c_str(), F_OK), -1) << "other files stay";
  for (const char* f : {"offloads-vpcnosuchif0", "offloads-lo", "offloads-lo.tmp"})
    EXPECT_EQ(access((dir + "/" + f).c_str(), F_OK), -1) << f << " deleted";
  EXPECT_TRUE(offloads_recover(ctl, dir + "/absent", &err).empty());
  EXPECT_EQ(err, "") << "no journal directory yet is not an error";
  close(ctl);
  std::remove((dir + "/unrelated").c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace vpc

namespace vpc {
namespace {

// A claim holds for the host, not only the process: a second vpcd must not
// attach an interface the first one switches (it would see and send the
// same frames: duplicates, loops). The kernel drops the claim when its
// process ends, however it ends.
TEST(InterfaceClaim, AnotherProcessIsToldApartAndItsEndReleasesTheClaim) {
  const std::string name = "vt-claim-" + std::to_string(getpid());
  int go[2], done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child = fork();
  if (child == 0) {  // another vpcd
    char c = claim_interface(name) == Claim::kOk ? 'y' : 'n';
    if (write(done[1], &c, 1) != 1) _exit(1);
    if (read(go[0], &c, 1) != 1) _exit(1);  // holds it until told
    _exit(0);  // no release: the end of the process must do
  }
  ASSERT_GT(child, 0);
  char c = 0;
  ASSERT_EQ(read(done[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_EQ(claim_interface(name), Claim::kOtherProcess);
  EXPECT_NE(claim_refused("interface " + name, Claim::kOtherProcess).find("another process of this switch (another vpcd"),
            std::string::npos);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  EXPECT_EQ(claim_interface(name), Claim::kOk) << "the process that held it ended";
  EXPECT_EQ(claim_interface(name), Claim::kThisProcess);
  EXPECT_NE(claim_refused("interface " + name, Claim::kThisProcess).find("is already attached to another port"), std::string::npos);
  release_interface(name);
  EXPECT_EQ(claim_interface(name), Claim::kOk) << "released";
  release_interface(name);
  for (int fd : {go[0], go[1], done[0], done[1]}) close(fd);
}

}  // namespace
}  // namespace vpc
