# TLS as a team's servers have it: a certificate for `localhost` signed by an authority of the
# tests' own, which nothing trusts unless told. Sourced by tests/run.sh (and by
# tests/postgres.sh when run.sh did not). Exports:
#
# MCPS_TEST_TLS_CA: the authority's certificate (PEM).
# MCPS_TEST_TLS_CERT, MCPS_TEST_TLS_KEY: the server's certificate for `localhost`, and its key.

if ! command -v openssl > /dev/null; then
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl > /dev/null
fi
tls_dir="$PWD/.test-env/tls"
rm -rf "$tls_dir"
mkdir -p "$tls_dir"
(
    cd "$tls_dir" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=mcps test authority" -keyout ca.key -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout server.key -out server.csr &&
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem &&
    chmod 600 server.key ca.key
) > "$tls_dir.log" 2>&1 || { cat "$tls_dir.log" >&2; return 1; }
export MCPS_TEST_TLS_CA="$tls_dir/ca.pem"
export MCPS_TEST_TLS_CERT="$tls_dir/server.pem"
export MCPS_TEST_TLS_KEY="$tls_dir/server.key"
