//! Value generators a plan can call (`generatorCall`): `uuid(4|7)`, `cuid(1|2)`, `ulid()`,
//! `nanoid(len?)`, `product(a, b)` and `now()` — one instant per plan run. The clock and the
//! randomness are injected ([`Entropy`]) so tests can pin them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::ExecError;
use crate::value::{js_date_iso, Value};

/// Clock and randomness.
pub trait Entropy: Send + Sync + 'static {
    fn now_millis(&self) -> i64;
    fn fill(&self, buf: &mut [u8]);
}

/// The system clock and the thread RNG.
#[derive(Debug, Default)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn now_millis(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::thread_rng().fill_bytes(buf);
    }
}

/// The generator registry shared by all runs (it owns the cuid counter).
pub struct Generators {
    entropy: Arc<dyn Entropy>,
    counter: AtomicU32,
    fingerprint: String,
}

const B36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(mut n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(B36[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

fn pad_tail(s: &str, width: usize) -> String {
    let padded = format!("{}{}", "0".repeat(width), s);
    padded[padded.len() - width..].to_owned()
}

impl Generators {
    pub fn new(entropy: Arc<dyn Entropy>) -> Self {
        let mut seed = [0u8; 4];
        entropy.fill(&mut seed);
        let fingerprint = pad_tail(&base36(u32::from_be_bytes(seed) as u64), 4);
        Self {
            entropy,
            counter: AtomicU32::new(0),
            fingerprint,
        }
    }

    pub fn entropy(&self) -> &Arc<dyn Entropy> {
        &self.entropy
    }

    fn random_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.entropy.fill(&mut b);
        u64::from_be_bytes(b)
    }

    fn uuid(&self, version: i64) -> Result<String, ExecError> {
        let mut b = [0u8; 16];
        self.entropy.fill(&mut b);
        match version {
            4 => Ok(uuid::Builder::from_random_bytes(b).into_uuid().to_string()),
            7 => {
                let ms = self.entropy.now_millis().max(0) as u64;
                let mut rand = [0u8; 10];
                rand.copy_from_slice(&b[..10]);
                Ok(uuid::Builder::from_unix_timestamp_millis(ms, &rand)
                    .into_uuid()
                    .to_string())
            }
            _ => Err(ExecError::Internal(
                "Invalid UUID generator arguments".into(),
            )),
        }
    }

    /// cuid v1 (`@bugsnag/cuid`): `c` + time + counter + fingerprint + random, base 36.
    fn cuid1(&self) -> String {
        let ms = self.entropy.now_millis().max(0) as u64;
        let count = self.counter.fetch_add(1, Ordering::Relaxed) % 1_679_616;
        let r1 = self.random_u64() % 1_679_616;
        let r2 = self.random_u64() % 1_679_616;
        format!(
            "c{}{}{}{}{}",
            pad_tail(&base36(ms), 8),
            pad_tail(&base36(count.into()), 4),
            self.fingerprint,
            pad_tail(&base36(r1), 4),
            pad_tail(&base36(r2), 4)
        )
    }

    /// cuid2 shape: a letter then 23 base-36 characters.
    fn cuid2(&self) -> String {
        let mut b = [0u8; 24];
        self.entropy.fill(&mut b);
        b.iter()
            .enumerate()
            .map(|(i, x)| if i == 0 { B36[10 + (*x as usize % 26)] } else { B36[*x as usize % 36] } as char)
            .collect()
    }

    fn ulid(&self) -> String {
        const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let ms = self.entropy.now_millis().max(0) as u64;
        let mut out = String::new();
        for i in (0..10).rev() {
            out.push(CROCKFORD[((ms >> (5 * i)) & 31) as usize] as char);
        }
        let mut b = [0u8; 16];
        self.entropy.fill(&mut b);
        for x in b {
            out.push(CROCKFORD[(x & 31) as usize] as char);
        }
        out
    }

    fn nanoid(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";
        let mut b = vec![0u8; len];
        self.entropy.fill(&mut b);
        b.iter()
            .map(|x| ALPHABET[(*x & 63) as usize] as char)
            .collect()
    }
}

/// The registry as one plan run sees it: `now` is fixed at its first use.
pub struct GeneratorRun<'a> {
    registry: &'a Generators,
    now: std::sync::OnceLock<String>,
}

impl<'a> GeneratorRun<'a> {
    pub fn new(registry: &'a Generators) -> Self {
        Self {
            registry,
            now: std::sync::OnceLock::new(),
        }
    }

    pub fn call(&self, name: &str, args: &[Value]) -> Result<Value, ExecError> {
        let num = |i: usize| {
            args.get(i).and_then(|v| match v {
                Value::Number(n) => Some(*n as i64),
                _ => None,
            })
        };
        let r = self.registry;
        Ok(match name {
            "now" => Value::Str(
                self.now
                    .get_or_init(|| js_date_iso(r.entropy.now_millis()))
                    .clone(),
            ),
            "uuid" => Value::Str(r.uuid(num(0).unwrap_or(0))?),
            "cuid" => match num(0) {
                Some(1) => Value::Str(r.cuid1()),
                Some(2) => Value::Str(r.cuid2()),
                _ => {
                    return Err(ExecError::Internal(
                        "Invalid CUID generator arguments".into(),
                    ))
                }
            },
            "ulid" => Value::Str(r.ulid()),
            "nanoid" => match args.first() {
                None | Some(Value::Undefined) => Value::Str(r.nanoid(21)),
                Some(Value::Number(n)) => Value::Str(r.nanoid(*n as usize)),
                _ => {
                    return Err(ExecError::Internal(
                        "Invalid Nanoid generator arguments".into(),
                    ))
                }
            },
            "product" => product(args)?,
            other => {
                return Err(ExecError::Internal(format!(
                    "Encountered an unknown generator '{other}'"
                )))
            }
        })
    }
}

fn product(args: &[Value]) -> Result<Value, ExecError> {
    let (Some(lhs), Some(rhs)) = (args.first(), args.get(1)) else {
        return Err(ExecError::Internal(
            "Invalid Product generator arguments".into(),
        ));
    };
    let pair = |a: &Value, b: &Value| Value::List(vec![a.clone(), b.clone()]);
    Ok(Value::List(match (lhs, rhs) {
        (Value::List(l), Value::List(r)) => l
            .iter()
            .flat_map(|a| r.iter().map(move |b| pair(a, b)))
            .collect(),
        (Value::List(l), r) => l.iter().map(|a| pair(a, r)).collect(),
        (l, Value::List(r)) => r.iter().map(|b| pair(l, b)).collect(),
        (l, r) => vec![pair(l, r)],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Entropy for Fixed {
        fn now_millis(&self) -> i64 {
            1_700_000_000_000
        }
        fn fill(&self, buf: &mut [u8]) {
            buf.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = i as u8 * 7);
        }
    }

    #[test]
    fn generators_have_the_reference_shapes() {
        let reg = Generators::new(Arc::new(Fixed));
        let run = GeneratorRun::new(&reg);
        let now = run.call("now", &[]).ok();
        assert_eq!(now, Some(Value::Str("2023-11-14T22:13:20.000Z".into())));
        assert_eq!(run.call("now", &[]).ok(), now);
        let Ok(Value::Str(uuid)) = run.call("uuid", &[Value::Number(4.0)]) else {
            panic!()
        };
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let Ok(Value::Str(cuid)) = run.call("cuid", &[Value::Number(1.0)]) else {
            panic!()
        };
        assert_eq!(cuid.len(), 25);
        assert!(cuid.starts_with('c'));
        assert!(cuid
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        let Ok(Value::Str(ulid)) = run.call("ulid", &[]) else {
            panic!()
        };
        assert_eq!(ulid.len(), 26);
        assert!(run.call("uuid", &[Value::Number(5.0)]).is_err());
    }

    #[test]
    fn product_pairs_lists() {
        let reg = Generators::new(Arc::new(Fixed));
        let run = GeneratorRun::new(&reg);
        let l = Value::List(vec![Value::Number(1.0), Value::Number(2.0)]);
        let Ok(Value::List(rows)) = run.call("product", &[l, Value::Str("t".into())]) else {
            panic!()
        };
        assert_eq!(rows.len(), 2);
    }
}
