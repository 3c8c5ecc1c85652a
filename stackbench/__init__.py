"""The harness: apps x servers x load -> results -> reports. The noxfile calls into this."""
