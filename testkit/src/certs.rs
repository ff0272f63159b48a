//! Test certificates made with the openssl command line: a private CA with a server
//! certificate for `localhost` and `127.0.0.1`, and a root → intermediate → server chain
//! whose intermediate expires first. Each set lives in its own temp dir, removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA and a server certificate it signed, as PEM files in `dir`.
pub struct Certs {
    /// The temp dir holding the files (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The CA (root) certificate a client trusts.
    pub ca: PathBuf,
    /// The server certificate (followed by its intermediate for a chain), as a server sends it.
    pub cert: PathBuf,
    /// The server's private key (unencrypted).
    pub key: PathBuf,
}

/// Runs the openssl command line in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and an EC (P-256) server certificate for `localhost` and `127.0.0.1`, both valid
/// for 2 days from now (tests check the expiry a probe reports).
pub fn make_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| openssl(d, args);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=didban test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    Certs {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
        dir,
    }
}

/// A client certificate for `name` (extended key usage `clientAuth`) signed by the CA of
/// `certs` (made by [`make_certs`]): `(cert, key)` PEM files in `certs.dir`, for mTLS tests.
pub fn make_client_cert(certs: &Certs, name: &str) -> (PathBuf, PathBuf) {
    let d = certs.dir.path();
    let run = |args: &[&str]| openssl(d, args);
    let key = format!("client-{name}.key");
    let csr = format!("client-{name}.csr");
    let pem = format!("client-{name}.pem");
    let subject = format!("/CN={name}");
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        &subject,
    ]);
    std::fs::write(
        d.join("client.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        &pem,
        "-days",
        "2",
        "-extfile",
        "client.cnf",
    ]);
    (d.join(pem), d.join(key))
}

/// A chain root (10 days) → intermediate (1 day) → server certificate (3 days): the
/// intermediate expires first. `cert` holds the server certificate followed by the
/// intermediate, as a server sends them; `ca` is the root.
pub fn make_chain_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| openssl(d, args);
    let key = |name: &str| {
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            name,
        ]);
    };
    key("root.key");
    key("int.key");
    key("server.key");
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "10",
        "-subj",
        "/CN=didban chain root",
    ]);
    std::fs::write(
        d.join("int.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    std::fs::write(
        d.join("server.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-new",
        "-key",
        "int.key",
        "-out",
        "int.csr",
        "-subj",
        "/CN=didban chain intermediate",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "int.pem",
        "-days",
        "1",
        "-extfile",
        "int.cnf",
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "int.pem",
        "-CAkey",
        "int.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "3",
        "-extfile",
        "server.cnf",
    ]);
    let mut chain = std::fs::read(d.join("leaf.pem")).unwrap();
    chain.extend(std::fs::read(d.join("int.pem")).unwrap());
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    Certs {
        ca: d.join("root.pem"),
        cert: d.join("chain.pem"),
        key: d.join("server.key"),
        dir,
    }
}
