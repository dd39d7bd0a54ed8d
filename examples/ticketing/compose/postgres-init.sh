# Sourced (or run) once by the postgres image's entrypoint, on an empty volume, against
# the temporary server on the unix socket: the app's role owning the app's database,
# nothing more (no superuser, createdb, createrole), as the provisioner's postgres
# plugin sets it up. The password comes from the environment, never a command line.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname postgres \
  --set user="$APP_DB_USER" --set password="$APP_DB_PASSWORD" --set db="$APP_DB_NAME" <<'SQL'
CREATE ROLE :"user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
\c :"db"
ALTER SCHEMA public OWNER TO :"user";
SQL
