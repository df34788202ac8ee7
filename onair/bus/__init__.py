"""The event bus. Alone, a node's RoomHub and NotificationHub are the bus (in-process); with
ONAIR_REDIS_URL, `redis_bus.RedisBus` carries room events, presence and control messages
between every node sharing that Redis."""
