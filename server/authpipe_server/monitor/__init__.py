"""Health monitoring: scheduled "who am I" checks that find revoked or broken grants before the
application's users do."""
