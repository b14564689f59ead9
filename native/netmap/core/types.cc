#include "core/types.h"

namespace vpc {

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool mac_parse(const char* s, Mac* out) {
  if (!s) return false;
  Mac m = 0;
  for (int i = 0; i < 6; ++i) {
    int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
    if (lo < 0) return false;
    m = (m << 8) | Mac(hi * 16 + lo);
    s += 2;
    if (i < 5) {
      if (*s != ':' && *s != '-') return false;
      ++s;
    }
  }
  if (*s != '\0') return false;
  *out = m;
  return true;
}

void mac_format(Mac m, char* buf) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    uint8_t b = uint8_t(m >> (40 - 8 * i));
    buf[3 * i] = hex[b >> 4];
    buf[3 * i + 1] = hex[b & 15];
    buf[3 * i + 2] = i < 5 ? ':' : '\0';
  }
}

}  // namespace vpc
