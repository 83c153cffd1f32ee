//! IP prefixes (CIDRs): parsing, containment and overlap, for IPv4 and IPv6. Used by the
//! diagnostics (an IP pool that covers node addresses) and, later, by the install preflight.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A parse error, naming the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP prefix (expected ADDRESS/LENGTH, e.g. 192.168.0.0/16)")]
pub struct CidrError(pub String);

/// An IP prefix, normalised to its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: u128,
    len: u8,
    v6: bool,
}

fn bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

impl Cidr {
    fn width(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    fn mask(len: u8, width: u8) -> u128 {
        if len == 0 {
            0
        } else {
            let all = if width == 128 {
                u128::MAX
            } else {
                (1u128 << width) - 1
            };
            all & !((1u128 << (width - len)) - 1)
        }
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (b, v6) = bits(ip);
        v6 == self.v6 && b & Self::mask(self.len, self.width()) == self.network
    }

    /// Whether the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.v6 != other.v6 {
            return false;
        }
        let len = self.len.min(other.len);
        let m = Self::mask(len, self.width());
        self.network & m == other.network & m
    }

    /// How many addresses it holds (saturating at `u128::MAX` for a /0 in IPv6).
    pub fn size(&self) -> u128 {
        let host_bits = self.width() - self.len;
        1u128.checked_shl(u32::from(host_bits)).unwrap_or(u128::MAX)
    }

    /// Its `n`-th address (0: the network address), when inside it.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        if n >= self.size() {
            return None;
        }
        let bits = self.network + n;
        Some(if self.v6 {
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        } else {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(bits).ok()?))
        })
    }

    /// Whether every address of `self` is in `outer`.
    pub fn within(&self, outer: &Cidr) -> bool {
        self.v6 == outer.v6
            && self.len >= outer.len
            && self.network & Self::mask(outer.len, self.width()) == outer.network
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_owned());
        let (addr, len) = s.trim().split_once('/').ok_or_else(err)?;
        let ip: IpAddr = addr.parse().map_err(|_| err())?;
        let len: u8 = len.parse().map_err(|_| err())?;
        let (b, v6) = bits(ip);
        let width = if v6 { 128 } else { 32 };
        if len > width {
            return Err(err());
        }
        Ok(Self {
            network: b & Self::mask(len, width),
            len,
            v6,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", std::net::Ipv6Addr::from(self.network), self.len)
        } else {
            let v4 = u32::try_from(self.network).map_err(|_| fmt::Error)?;
            write!(f, "{}/{}", std::net::Ipv4Addr::from(v4), self.len)
        }
    }
}

/// The address part of `10.13.0.2/16` or `10.13.0.2` (Calico writes node addresses with their
/// prefix length).
pub fn address_part(text: &str) -> Option<IpAddr> {
    text.split('/').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn a_prefix_counts_and_numbers_its_addresses() {
        let b = c("192.168.0.64/26");
        assert_eq!(b.size(), 64);
        assert_eq!(b.nth(0), Some("192.168.0.64".parse().expect("ip")));
        assert_eq!(b.nth(63), Some("192.168.0.127".parse().expect("ip")));
        assert_eq!(b.nth(64), None);
        assert_eq!(
            c("fd00::/120").nth(255),
            Some("fd00::ff".parse().expect("ip"))
        );
        assert_eq!(c("::/0").size(), u128::MAX);
    }

    #[test]
    fn containment_and_overlap() {
        let pool = c("192.168.0.0/16");
        assert!(pool.contains("192.168.100.7".parse().expect("ip")));
        assert!(!pool.contains("10.13.0.2".parse().expect("ip")));
        assert!(pool.overlaps(&c("192.168.100.0/24")));
        assert!(c("192.168.100.0/24").overlaps(&pool));
        assert!(!pool.overlaps(&c("10.96.0.0/12")));
        assert!(c("192.168.4.0/26").within(&pool));
        assert!(!pool.within(&c("192.168.4.0/26")));
        assert_eq!(c("192.168.7.9/16").to_string(), "192.168.0.0/16");
        assert!(c("fd00::/8").contains("fd12::1".parse().expect("ip")));
        assert!(!c("fd00::/8").overlaps(&pool));
        assert!(c("0.0.0.0/0").contains("8.8.8.8".parse().expect("ip")));
    }

    #[test]
    fn bad_prefixes_are_refused_by_name() {
        for bad in ["192.168.0.0", "192.168.0.0/33", "x/8", "192.168.0.0/-1"] {
            let e = bad.parse::<Cidr>().expect_err(bad);
            assert!(e.to_string().contains(bad));
        }
        assert_eq!(
            address_part("10.13.0.3/16"),
            Some("10.13.0.3".parse().expect("ip"))
        );
    }
}
