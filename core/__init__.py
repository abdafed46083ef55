"""The ground floor: what every layer needs and that needs nothing of keybin itself
(the clock, domain errors, global ids, secrets)."""
