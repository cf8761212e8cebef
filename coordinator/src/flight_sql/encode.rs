//! Encoding answers: result streams with the final figures as app metadata, metadata
//! answers, and view arrays compacted before they go on the wire.

use super::*;

/// Passes `messages` through, holding one back, and attaches the query's final figures as app
/// metadata to the last message (the schema message when there are no rows). A message of
/// app metadata alone would be simpler, but Arrow Go's reader (under the ADBC drivers) fails on
/// a message without an IPC header.
pub(super) fn with_final_app_metadata(
    messages: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    record: StatementRecord,
) -> FlightDataStream {
    // Fused: after the last message the stream is polled once more to find its end.
    let start = (Box::pin(messages.fuse()), None::<FlightData>, Some(record));
    Box::pin(futures::stream::unfold(
        start,
        |(mut messages, mut held, mut record)| async move {
            loop {
                match messages.next().await {
                    Some(Ok(next)) => {
                        if let Some(previous) = held.replace(next) {
                            return Some((Ok(previous), (messages, held, record)));
                        }
                    }
                    // The failure is what the client needs; the held message goes with it.
                    Some(Err(status)) => return Some((Err(status), (messages, None, None))),
                    None => {
                        let last = held.take()?;
                        let summary = record.take().map(|f| summary_json(&f)).unwrap_or_default();
                        return Some((
                            Ok(last.with_app_metadata(summary.into_bytes())),
                            (messages, None, None),
                        ));
                    }
                }
            }
        },
    ))
}

/// The figures of a statement, as app metadata JSON.
pub(super) fn summary_json(record: &StatementRecord) -> String {
    serde_json::to_string(&record.summary()).unwrap_or_default()
}

/// A FlightInfo for a metadata command: one endpoint whose ticket is the command itself (it
/// carries no data, and DoGet authenticates again).
pub(super) fn command_flight_info(
    command: impl ProstMessageExt,
    schema: &SchemaRef,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|err| Status::internal(format!("cannot encode schema: {err}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A one-batch DoGet answer.
pub(super) fn batch_response<E: std::fmt::Display>(
    schema: SchemaRef,
    batch: Result<RecordBatch, E>,
) -> Result<Response<FlightDataStream>, Status> {
    let batch = batch.map_err(|err| Status::internal(format!("building metadata: {err}")))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(flight_error_status);
    Ok(Response::new(Box::pin(stream)))
}

/// An empty result with `schema` (keys and cross references: Osprey has no constraints).
pub(super) fn empty_response(schema: SchemaRef) -> Result<Response<FlightDataStream>, Status> {
    batch_response::<FlightError>(Arc::clone(&schema), Ok(RecordBatch::new_empty(schema)))
}

pub(super) type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// Copies string and binary view columns whose buffers are mostly unreferenced.
///
/// A view array sliced or filtered from a larger one (a LIMIT, a selective filter) still points
/// at the original data buffers, and Arrow IPC sends every buffer it points at: twenty rows can
/// cost tens of megabytes on the wire, past clients' message limits. Compacting bounds each
/// message by the data it actually carries.
pub(super) fn compact_view_arrays(batch: RecordBatch) -> RecordBatch {
    fn wasteful(referenced: usize, buffers: &[datafusion::arrow::buffer::Buffer]) -> bool {
        let held: usize = buffers.iter().map(|b| b.len()).sum();
        held > 2 * referenced + 64 * 1024
    }
    let needs_compaction = batch.columns().iter().any(|column| {
        if let Some(views) = column.as_string_view_opt() {
            wasteful(views.total_buffer_bytes_used(), views.data_buffers())
        } else if let Some(views) = column.as_binary_view_opt() {
            wasteful(views.total_buffer_bytes_used(), views.data_buffers())
        } else {
            false
        }
    });
    if !needs_compaction {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| -> ArrayRef {
            if let Some(views) = column.as_string_view_opt() {
                Arc::new(views.gc())
            } else if let Some(views) = column.as_binary_view_opt() {
                Arc::new(views.gc())
            } else {
                Arc::clone(column)
            }
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap_or(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn sliced_view_arrays_are_compacted() {
        let long: Vec<String> = (0..10_000).map(|i| format!("{i:0>100}")).collect();
        let array = StringViewArray::from_iter_values(long.iter());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        let slice = batch.slice(10, 2);
        let held = |b: &RecordBatch| -> usize {
            b.column(0)
                .as_string_view()
                .data_buffers()
                .iter()
                .map(|b| b.len())
                .sum()
        };
        assert!(held(&slice) > 900_000);
        let compacted = compact_view_arrays(slice.clone());
        assert!(held(&compacted) < 1_000, "{}", held(&compacted));
        assert_eq!(compacted, slice);
    }

    #[test]
    fn small_batches_are_left_alone() {
        let array = StringViewArray::from_iter_values(["a", "b"]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        assert_eq!(compact_view_arrays(batch.clone()), batch);
    }
}
