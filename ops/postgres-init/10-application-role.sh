#!/bin/sh
# Run once by the postgres image when its data volume is new (/docker-entrypoint-initdb.d):
# the application role the web app and the workers connect as. It owns nothing, so it can neither
# drop nor disable the audit trail's triggers; `fivestar db upgrade` (the `migrate` service, as the
# owner POSTGRES_USER) grants it exactly its privileges (fivestar.dbroles). ops/README.md
# "Database roles" has the same by hand, for a volume created before this script existed.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$FIVESTAR_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE fivestar_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
SQL
