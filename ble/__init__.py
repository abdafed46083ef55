"""Lockbox protocol: credentials, access records, One Day Codes, GATT framing and clients."""
