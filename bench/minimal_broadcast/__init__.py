"""The baseline for the fan-out benchmark: the smallest Channels broadcast there is.

One Daphne process, one group, the default core ``channels_redis`` RedisChannelLayer and a
consumer that forwards pre-serialised text — no wallboard code at all.
"""
