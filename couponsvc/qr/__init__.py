"""Signed QR coupons: the key ring, the payload format and its images."""
