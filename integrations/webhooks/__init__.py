"""Outgoing webhooks: signing (Standard Webhooks), fan-out of events, delivery with retries."""
