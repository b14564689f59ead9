// Port spec grammar (spec.h): accepted forms, canonical output, and the
// messages of rejected ones.
#include "ports/spec.h"

#include <gtest/gtest.h>

#include "ports/netmap.h"

namespace vpc {
namespace {

PortSpec ok(const char* text) {
  PortSpec s;
  std::string err;
  EXPECT_TRUE(parse_port_spec(text, &s, &err)) << text << ": " << err;
  return s;
}

std::string bad(const char* text) {
  PortSpec s;
  std::string err;
  EXPECT_FALSE(parse_port_spec(text, &s, &err)) << text;
  EXPECT_FALSE(err.empty());
  return err;
}

TEST(PortSpec, AcceptsEveryBackend) {
  PortSpec a = ok("afpacket:veth-a");
  EXPECT_EQ(a.backend, PortBackend::kAfPacket);
  EXPECT_EQ(a.ifname, "veth-a");
  EXPECT_EQ(a.queue, -1);
  EXPECT_EQ(a.canonical, "afpacket:veth-a");
  EXPECT_EQ(ok("tap:vm1").backend, PortBackend::kTap);
  PortSpec x = ok("afxdp:eth0@3");
  EXPECT_EQ(x.backend, PortBackend::kAfXdp);
  EXPECT_EQ(x.queue, 3);
  EXPECT_EQ(x.canonical, "afxdp:eth0@3");
  PortSpec n = ok("netmap:eth0");
  EXPECT_EQ(n.backend, PortBackend::kNetmap);
  EXPECT_FALSE(n.host_rings);
  EXPECT_TRUE(ok("netmap:eth0^").host_rings);
  EXPECT_EQ(ok("netmap:eth0@1").queue, 1);
  PortSpec v = ok("vale0:p1");
  EXPECT_EQ(v.backend, PortBackend::kVale);
  EXPECT_EQ(v.vale, "vale0");
  EXPECT_EQ(v.ifname, "p1");
  EXPECT_EQ(v.canonical, "vale0:p1");
  EXPECT_EQ(ok("afpacket:a.b_c-d").ifname, "a.b_c-d");
  EXPECT_EQ(ok("afpacket:abcdefghijklmno").ifname.size(), 15u);  // exactly the limit
}

TEST(PortSpec, RejectsWithMessagesThatSayWhatToDo) {
  EXPECT_NE(bad("").find("empty"), std::string::npos);
  EXPECT_NE(bad("eth0").find("afpacket:eth0"), std::string::npos);
  EXPECT_NE(bad("foo:eth0").find("unknown backend \"foo\""), std::string::npos);
  EXPECT_NE(bad("afpacket:").find("interface name is missing"), std::string::npos);
  EXPECT_NE(bad("tap:").find("missing"), std::string::npos);
  std::string longname = bad("afpacket:abcdefghijklmnop");
  EXPECT_NE(longname.find("16 characters"), std::string::npos) << longname;
  EXPECT_NE(longname.find("at most 15"), std::string::npos) << longname;
  std::string ch = bad("afpacket:eth 0");
  EXPECT_NE(ch.find("' ' at position 4"), std::string::npos) << ch;
  EXPECT_NE(bad("afpacket:a/b").find("'/'"), std::string::npos);
  EXPECT_NE(bad("afpacket:..").find("not a valid"), std::string::npos);
  EXPECT_NE(bad("afpacket:eth0@1").find("afxdp"), std::string::npos);
  EXPECT_NE(bad("afxdp:eth0@").find("0..1023"), std::string::npos);
  EXPECT_NE(bad("afxdp:eth0@1024").find("0..1023"), std::string::npos);
  EXPECT_NE(bad("afxdp:eth0@x").find("0..1023"), std::string::npos);
  EXPECT_NE(bad("vale-x:p1").find("VALE switch name"), std::string::npos);
  EXPECT_NE(bad("vale0:").find("VALE port name is missing"), std::string::npos);
}

TEST(PortSpec, OpeningNetmapWithoutTheDeviceNamesTheAlternatives) {
  auto pool = BufferPool::create(BufferPoolOptions{1024, 2048, 128, false});
  for (const char* text : {"netmap:eth0", "vale0:p1"}) {
    PortSpec s = ok(text);
    try {
      NetmapPort::open(s, KernelPortOptions{}, pool, std::make_shared<PortStatus>(), "/nonexistent/netmap");
      FAIL() << "opened " << text;
    } catch (const PortError& e) {
      EXPECT_EQ(e.status, Status::kNotFound);
      std::string m = e.what();
      EXPECT_NE(m.find("/dev/netmap does not exist"), std::string::npos) << m;
      for (const char* alt : {"afxdp:", "afpacket:", "tap:"}) EXPECT_NE(m.find(alt), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace vpc
