#!/usr/bin/env python3
"""Prints the current authenticator code (RFC 6238: SHA-1, 6 digits, 30 s) for a base32 key.

For the demo: `scripts/totp.py NEXUSDEMOFAKETOTPSECRETKEY234567` gives exec@demo.nexus's code
when `make run` set NEXUS_DEMO_TOTP_SECRET (a demo credential, not a secret)."""
import base64
import hashlib
import hmac
import struct
import sys
import time

key = sys.argv[1] if len(sys.argv) > 1 else "NEXUSDEMOFAKETOTPSECRETKEY234567"
secret = base64.b32decode(key.upper() + "=" * (-len(key) % 8))
step = int(time.time()) // 30
mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
offset = mac[-1] & 15
code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
print(f"{code:06d}  (valid for {30 - int(time.time()) % 30} more seconds)")
