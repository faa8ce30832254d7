//! `GET /v1/regions`, `GET /v1/regions/postgres` and `GET /v1/regions/accelerate`, and
//! resolving a requested region.

use pgfleet_api_types::region::{PostgresRegion, Region as RegionView, RegionRef, RegionStatus};

use crate::regions::Region;
use crate::{DomainError, Result};

/// The regions the API offers. Obtained from [`super::Services::regions`].
#[derive(Debug, Clone, Copy)]
pub struct Regions<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Regions<'_> {
    pub fn postgres(&self) -> Vec<PostgresRegion> {
        self.ctx
            .configured_regions()
            .iter()
            .map(|r| PostgresRegion {
                id: r.id.clone(),
                kind: "region".to_string(),
                name: r.name.clone(),
                status: if r.available() {
                    RegionStatus::Available
                } else {
                    RegionStatus::Unavailable
                },
            })
            .collect()
    }

    /// The regions whose databases the `prisma+postgres://` endpoint serves: every available
    /// region when it runs, none when it is off.
    pub fn accelerate(&self) -> Vec<PostgresRegion> {
        if self.ctx.config().accelerate.is_none() {
            return Vec::new();
        }
        self.postgres()
            .into_iter()
            .filter(|r| r.status == RegionStatus::Available)
            .collect()
    }

    /// All regions of a product (`postgres`, `accelerate`), or of both.
    pub fn all(&self, product: Option<&str>) -> Result<Vec<RegionView>> {
        let (postgres, accelerate) = match product {
            None => (true, true),
            Some("postgres") => (true, false),
            Some("accelerate") => (false, true),
            Some(other) => {
                return Err(DomainError::bad_request_hint(
                    format!("Unknown product {other:?}"),
                    "Use product=postgres or product=accelerate.",
                ))
            }
        };
        let view = |product: &str| {
            let product = product.to_string();
            move |r: PostgresRegion| RegionView {
                id: r.id,
                kind: r.kind,
                name: r.name,
                product: product.clone(),
                status: r.status,
            }
        };
        let mut all = Vec::new();
        if postgres {
            all.extend(self.postgres().into_iter().map(view("postgres")));
        }
        if accelerate {
            all.extend(self.accelerate().into_iter().map(view("accelerate")));
        }
        Ok(all)
    }

    pub(crate) fn region_ref(&self, id: &str) -> RegionRef {
        let name = self
            .ctx
            .configured_regions()
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| id.to_string());
        RegionRef {
            id: id.to_string(),
            name,
        }
    }

    /// A region new databases can be placed in, or a 400 whose hint lists the available ones.
    pub(crate) fn available(&self, id: &str) -> Result<&Region> {
        let available: Vec<&str> = self
            .ctx
            .configured_regions()
            .iter()
            .filter(|r| r.available())
            .map(|r| r.id.as_str())
            .collect();
        let hint = format!("Available regions: {}.", available.join(", "));
        match self.ctx.configured_regions().iter().find(|r| r.id == id) {
            Some(r) if r.available() => Ok(r),
            Some(_) => Err(DomainError::bad_request_hint(
                format!("Region {id} is not available on this server"),
                hint,
            )),
            None => Err(DomainError::bad_request_hint(
                format!("Unknown region {id:?}"),
                hint,
            )),
        }
    }
}
