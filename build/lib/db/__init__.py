"""PostgreSQL model: ordered SQL migrations in db/migrations, applied by `shopstream migrate`."""
