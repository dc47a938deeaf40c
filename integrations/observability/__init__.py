"""What the service tells about itself beyond logs: traces over OTLP and the Temporal
SDK's metrics for Prometheus. Each is off until its setting is given, and off means
off: nothing is imported, instrumented or installed."""
