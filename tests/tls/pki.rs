//! A throwaway PKI made at test time: a CA, server certificates for localhost and 127.0.0.1,
//! client certificates; the files a server reads them from; and a raw TLS client that
//! reports what the server presented.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::support::TestTls;

pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A certificate and its key, as PEM, and the certificate's DER.
#[derive(Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    fn issue(&self, sans: &[&str], name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, common name `name`.
    pub fn server(&self, name: &str) -> Leaf {
        self.issue(
            &["localhost", "127.0.0.1"],
            name,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    pub fn client(&self, name: &str) -> Leaf {
        self.issue(&[], name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A tonic client config trusting only this CA.
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pem))
            .domain_name("localhost")
    }
}

impl Leaf {
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }
}

/// The file at `path` with `text` in it.
pub fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// What a TLS handshake with the server gave: the certificate it presented, the protocol
/// version and ALPN.
pub struct Handshake {
    pub leaf: Vec<u8>,
    pub version: rustls::ProtocolVersion,
    pub alpn: Option<Vec<u8>>,
}

/// A raw TLS connection (no HTTP/2, no tonic) that trusts `ca`, offering only `versions`.
pub async fn handshake(
    addr: SocketAddr,
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Handshake, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let (_, session) = tls.get_ref();
    Ok(Handshake {
        leaf: session.peer_certificates().unwrap()[0].to_vec(),
        version: session.protocol_version().unwrap(),
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
    })
}

/// The certificate a new connection is served now.
pub async fn served(addr: SocketAddr, ca: &Ca) -> Vec<u8> {
    handshake(addr, ca, rustls::DEFAULT_VERSIONS)
        .await
        .expect("handshake")
        .leaf
}

/// A directory laid out as the kubelet mounts a Secret (and so as cert-manager rotates it):
/// `tls.crt` and `tls.key` are symlinks into `..data`, a symlink to a versioned directory;
/// an update writes a new version and swaps `..data` in one rename.
pub struct SecretMount {
    dir: PathBuf,
    version: u32,
}

impl SecretMount {
    pub fn new(dir: &Path, leaf: &Leaf) -> SecretMount {
        let mut mount = SecretMount {
            dir: dir.join("secret"),
            version: 0,
        };
        std::fs::create_dir(&mount.dir).unwrap();
        mount.publish(&leaf.cert, &leaf.key);
        for file in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{file}"), mount.dir.join(file)).unwrap();
        }
        mount
    }

    pub fn publish(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&version)).unwrap();
        write(&self.dir.join(&version).join("tls.crt"), cert);
        write(&self.dir.join(&version).join("tls.key"), key);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    pub fn tls(&self, client: ClientTlsConfig) -> TestTls {
        TestTls {
            cert: self.dir.join("tls.crt"),
            key: self.dir.join("tls.key"),
            client_ca: None,
            client,
        }
    }
}

/// A server certificate from `ca`, as plain files in `dir`.
pub fn files(dir: &Path, ca: &Ca, client: ClientTlsConfig) -> TestTls {
    let leaf = ca.server("entitlements");
    TestTls {
        cert: write(&dir.join("tls.crt"), &leaf.cert),
        key: write(&dir.join("tls.key"), &leaf.key),
        client_ca: None,
        client,
    }
}
