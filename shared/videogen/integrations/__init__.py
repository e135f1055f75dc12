"""What we call over HTTP: Storage, webhooks, Apple, DeviceCheck, stock media, providers."""
