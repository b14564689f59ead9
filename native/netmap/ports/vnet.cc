#include "ports/vnet.h"

#include <cstring>

namespace vpc {

VnetVerdict vnet_read(const uint8_t* h, uint32_t frame_len, OffloadMeta* m) {
  if (h[0] == 0 && h[1] == OffloadMeta::kGsoNone) return VnetVerdict::kPlain;  // the common case, one load
  OffloadMeta r;
  if (!offload_from_vnet(h, &r)) return VnetVerdict::kInvalid;
  if (r.flags & ~(OffloadMeta::kNeedsCsum | OffloadMeta::kDataValid)) return VnetVerdict::kInvalid;
  if (!r.gso() && (r.gso_type & OffloadMeta::kGsoEcn)) return VnetVerdict::kInvalid;
  if (r.needs_csum() && uint32_t(r.csum_start) + r.csum_offset + 2 > frame_len) return VnetVerdict::kInvalid;
  if (!r.pending()) return VnetVerdict::kPlain;  // only DATA_VALID: nothing left for anyone to do
  *m = r;
  return VnetVerdict::kOffload;
}

void vnet_write(const OffloadMeta* m, uint8_t* h) {
  if (!m) {
    std::memset(h, 0, kVnetHdrLen);
    return;
  }
  OffloadMeta t = *m;
  t.flags &= OffloadMeta::kNeedsCsum;
  offload_to_vnet(t, h);
}

}  // namespace vpc
