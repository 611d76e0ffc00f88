"""Channels that carry messages out: webhooks now, SMS and chat robots beside them."""
