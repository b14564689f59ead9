// The capture ring's allocation and the pcap headers (core/capture.h).
#include "core/capture.h"

#include <stdexcept>

namespace vpc {

CaptureRing::CaptureRing(uint32_t slots, uint32_t snaplen) {
  if (slots < 2 || slots > kMaxSlots || (slots & (slots - 1)) != 0)
    throw std::invalid_argument("capture ring: slots must be a power of two in 2..65536");
  if (snaplen < 1 || snaplen > kMaxSnaplen) throw std::invalid_argument("snaplen: must be in 1..65535");
  mask_ = slots - 1;
  snaplen_ = snaplen;
  stride_ = (sizeof(CaptureRecord) + snaplen + 63) & ~size_t(63);
  mem_.reset(new uint8_t[stride_ * slots]);
}

void pcap_file_header(uint8_t* out, uint32_t snaplen) {
  const uint32_t magic = kPcapMagic, zone = 0, sigfigs = 0, link = kPcapLinktypeEthernet;
  const uint16_t major = 2, minor = 4;
  std::memcpy(out, &magic, 4);
  std::memcpy(out + 4, &major, 2);
  std::memcpy(out + 6, &minor, 2);
  std::memcpy(out + 8, &zone, 4);
  std::memcpy(out + 12, &sigfigs, 4);
  std::memcpy(out + 16, &snaplen, 4);
  std::memcpy(out + 20, &link, 4);
}

void pcap_record_header(uint8_t* out, const CaptureRecord& r) {
  const uint32_t sec = uint32_t(r.ts_ns / 1000000000ull);
  const uint32_t usec = uint32_t((r.ts_ns % 1000000000ull) / 1000);
  const uint32_t incl = r.cap_len, orig = r.orig_len;
  std::memcpy(out, &sec, 4);
  std::memcpy(out + 4, &usec, 4);
  std::memcpy(out + 8, &incl, 4);
  std::memcpy(out + 12, &orig, 4);
}

}  // namespace vpc
