//! `GET /v1/regions` and `GET /v1/regions/postgres`, and resolving a requested region.

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

    /// All regions; pgfleet offers the `postgres` product only.
    pub fn all(&self, product: Option<&str>) -> Result<Vec<RegionView>> {
        match product {
            None | Some("postgres") => {}
            Some("accelerate") => return Ok(vec![]),
            Some(other) => {
                return Err(DomainError::bad_request_hint(
                    format!("Unknown product {other:?}"),
                    "Use product=postgres or product=accelerate.",
                ))
            }
        }
        Ok(self
            .postgres()
            .into_iter()
            .map(|r| RegionView {
                id: r.id,
                kind: r.kind,
                name: r.name,
                product: "postgres".to_string(),
                status: r.status,
            })
            .collect())
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
