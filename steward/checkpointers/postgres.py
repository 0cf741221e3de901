"""The scale-out store: PostgreSQL through a psycopg 3 connection pool, many workers at once."""

from __future__ import annotations

from typing import Any

from steward._url import mask
from steward.checkpointers._drivers import AsyncPostgresDriver, PostgresDriver
from steward.checkpointers.saver import StewardSaver


class PostgresSaver(StewardSaver):
    """A :class:`StewardSaver` on PostgreSQL; sync and async methods both work."""

    driver: PostgresDriver | AsyncPostgresDriver

    @classmethod
    def from_conn_string(cls, conninfo: str, *, pool_size: int = 10,
                         **options: Any) -> PostgresSaver:
        """A saver on a synchronous pool (async methods run it in a worker thread)."""
        saver = cls(PostgresDriver(conninfo, mask(conninfo), pool_size=pool_size), **options)
        saver.setup()
        return saver

    @classmethod
    async def afrom_conn_string(cls, conninfo: str, *, pool_size: int = 10,
                                **options: Any) -> PostgresSaver:
        """A saver on an asyncio pool bound to the running event loop."""
        driver = await AsyncPostgresDriver.connect(conninfo, mask(conninfo), pool_size=pool_size)
        saver = cls(driver, **options)
        await saver.asetup()
        return saver

    def close(self) -> None:
        super().close()
        self.driver.close()

    async def aclose(self) -> None:
        super().close()
        if isinstance(self.driver, AsyncPostgresDriver):
            await self.driver.aclose()
        else:
            self.driver.close()
