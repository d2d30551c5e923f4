"""The MQTT -> Kafka bridge: QoS1 in, acks=all out, PUBACK only after Kafka, in arrival order.

settings.py   BridgeSettings (FLEET_BRIDGE_*)
routing.py    message -> Kafka record: telemetry.<subsystem> or the dead-letter topic
window.py     the ordered ack window: which PUBACKs may go out now
batcher.py    per-partition record batches handed to aiokafka (send_batch)
source.py     a paho client driven by the asyncio loop (no network thread)
metrics.py    counters and the latency histogram, Prometheus text
bridge.py     the Bridge service wiring them, with outage recovery
__main__.py   `python -m services.bridge` (same as `fleet bridge`)
"""
