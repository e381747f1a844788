"""Why a send of the ESP is not moving: findings from the ESP's own data
(:mod:`.sends`) and their entries in the error catalogue (:mod:`.errors`)."""
