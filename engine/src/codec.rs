//! The codec that carries Osprey's own plan nodes to executors: [`StagedWriteExec`] (writes),
//! [`ProbeSliceExec`] (nested-loop joins in short steps) and Iceberg scans
//! ([`osprey_iceberg::ScanCodec`]). Registered on both sides. Each node is encoded as a
//! one-byte tag and the node's own payload.

use crate::policy_boundary::PolicyBoundaryExec;
use crate::probe_slices::ProbeSliceExec;
use crate::write::{StagedWriteExec, WriteCodec};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use std::sync::Arc;

const WRITE: u8 = b'W';
const PROBE_SLICES: u8 = b'P';
const ICEBERG_SCAN: u8 = b'I';
const POLICY_BOUNDARY: u8 = b'B';

/// Encodes and decodes Osprey's plan nodes (see the module docs).
#[derive(Debug, Default)]
pub struct OspreyCodec;

impl PhysicalExtensionCodec for OspreyCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&WRITE, payload)) => WriteCodec.try_decode(payload, inputs, ctx, proto_converter),
            Some((&ICEBERG_SCAN, payload)) => {
                osprey_iceberg::ScanCodec::decode(payload, ctx, self, proto_converter)
            }
            Some((&POLICY_BOUNDARY, payload)) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(
                        "PolicyBoundaryExec takes exactly one input".to_string(),
                    ));
                };
                // The unmasked columns, each a little-endian u32.
                let unmasked = payload
                    .chunks(4)
                    .map(|bytes| {
                        <[u8; 4]>::try_from(bytes)
                            .map(|b| u32::from_le_bytes(b) as usize)
                            .map_err(|_| {
                                DataFusionError::Internal(
                                    "undecodable PolicyBoundaryExec".to_string(),
                                )
                            })
                    })
                    .collect::<Result<Vec<usize>>>()?;
                Ok(Arc::new(PolicyBoundaryExec::new(
                    Arc::clone(input),
                    unmasked,
                )))
            }
            Some((&PROBE_SLICES, payload)) => {
                let rows = <[u8; 8]>::try_from(payload).map_err(|_| {
                    DataFusionError::Internal("undecodable ProbeSliceExec".to_string())
                })?;
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(
                        "ProbeSliceExec takes exactly one input".to_string(),
                    ));
                };
                Ok(Arc::new(ProbeSliceExec::new(
                    Arc::clone(input),
                    u64::from_le_bytes(rows) as usize,
                )))
            }
            _ => Err(DataFusionError::Internal(
                "an unknown Osprey plan node: are the coordinator and executors the same version?"
                    .to_string(),
            )),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if node.downcast_ref::<StagedWriteExec>().is_some() {
            buf.push(WRITE);
            return WriteCodec.try_encode(node, buf, proto_converter);
        }
        if osprey_iceberg::ScanCodec::handles(node.as_ref()) {
            buf.push(ICEBERG_SCAN);
            return osprey_iceberg::ScanCodec::encode(node.as_ref(), buf, self, proto_converter);
        }
        if let Some(boundary) = node.downcast_ref::<PolicyBoundaryExec>() {
            buf.push(POLICY_BOUNDARY);
            for column in boundary.unmasked() {
                buf.extend_from_slice(&(*column as u32).to_le_bytes());
            }
            return Ok(());
        }
        if let Some(slices) = node.downcast_ref::<ProbeSliceExec>() {
            buf.push(PROBE_SLICES);
            buf.extend_from_slice(&(slices.rows() as u64).to_le_bytes());
            return Ok(());
        }
        Err(DataFusionError::NotImplemented(format!(
            "Osprey cannot send plan node {} to executors",
            node.name()
        )))
    }
}
