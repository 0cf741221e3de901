"""Storage, the bottom layer: database drivers, operations as generators of statements (the
sans-IO seam every sync/async pair shares), per-part schema migrations, the payload codec and
its encryption. Imports nothing of Steward's but ``steward.errors``."""
