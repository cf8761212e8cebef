//! The Flight SQL service itself: each call of the protocol, decoded into a principal and a
//! session and handed to the statement service (or answered from the catalogs it shows).

use super::*;

#[tonic::async_trait]
impl FlightSqlService for FlightSqlFrontDoor {
    type FlightService = FlightSqlFrontDoor;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| auth_status(AuthError::Missing))?
            .to_str()
            .map_err(|_| auth_status(AuthError::Malformed))?;
        let (user, password) = basic_credentials(header).map_err(auth_status)?;
        let peer = request.remote_addr().map(|addr| addr.ip());
        let token = self
            .auth
            .login(&user, &password, peer)
            .await
            .map_err(|err| {
                tracing::info!(%user, "login refused");
                auth_status(err)
            })?;
        tracing::info!(%user, "login");
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let output: Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>> =
            Box::pin(futures::stream::iter([Ok(response)]));
        let mut response = Response::new(output);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("cannot encode bearer token"))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.authenticate(&request).await?;
        self.flight_info_for(&user, &query.query, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.authenticate(&request).await?;
        let entry = self.prepared_for(&user, &query.prepared_statement_handle)?;
        let rows = if entry.parameters.is_empty() {
            vec![None]
        } else {
            entry.parameters.into_iter().map(Some).collect()
        };
        self.flight_info_for_rows(&user, &entry.sql, rows, request.into_inner())
            .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = self.authenticate(&request).await?;
        self.prepared_for(&user, &query.prepared_statement_handle)?;
        let rows = self.read_parameters(request.into_inner()).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        if !self
            .prepared
            .update(&handle, |entry| entry.parameters = rows)
        {
            return Err(Status::not_found(
                "unknown or expired prepared statement: create it again",
            ));
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        // Another user's ticket is treated as unknown and left in place for its owner.
        let queue_clock = match self.tickets.get(&handle) {
            Some(entry) if entry.open.is_owned_by(&user) => entry.statement.record().queue_clock(),
            _ => return Err(unknown_ticket()),
        };
        // Tickets are single use: the plan is released as soon as its result is fetched.
        // Registered as running before the ticket goes, so that a progress question always
        // finds the statement in one place or the other.
        let (registrations, registered) =
            self.running.register(&handle, &user.user_id, queue_clock);
        let entry = self.tickets.remove(&handle).ok_or_else(unknown_ticket)?;
        let schema: SchemaRef = entry.statement.schema();
        // A cancel while the query waits in its workgroup's queue takes it out of the queue.
        let running = Abortable::new(entry.statement.start(), registrations.start)
            .await
            .map_err(|_| {
                Status::cancelled("the query was cancelled (CancelFlightInfo) before it started")
            })?
            .map_err(query_status)?;
        registered.set_progress(running.bytes_scanned, running.progress);
        let record = running.record;
        let stream = running.stream;
        let batches = stream
            .map_ok(compact_view_arrays)
            .map_err(|err| FlightError::ExternalError(Box::new(err)));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(flight_error_status);
        let encoded = cancel::cancellable(encoded, registrations.stream, registered);
        Ok(Response::new(with_final_app_metadata(encoded, record)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let user = self.authenticate(&request).await?;
        // Planning only: DDL runs when the prepared statement is executed.
        let description = self
            .service
            .describe(&self.session_of(&user), &query.query)
            .await
            .map_err(query_status)?;
        let encode = |schema: &SchemaRef| -> Result<_, Status> {
            let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
                .try_into()
                .map_err(|err| Status::internal(format!("cannot encode a schema: {err}")))?;
            Ok(bytes)
        };
        let dataset_schema = encode(&description.schema)?;
        let parameter_schema = if description.parameters.fields().is_empty() {
            Default::default()
        } else {
            encode(&description.parameters)?
        };
        let open = self.service.open_statement(&user).map_err(handle_limit)?;
        let handle = self
            .prepared
            .insert(
                &user.user_id,
                PreparedEntry {
                    open: Arc::new(open),
                    sql: query.query,
                    parameters: Vec::new(),
                },
            )
            .map_err(handle_limit)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let user = self.authenticate(&request).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        if self
            .prepared
            .get(&handle)
            .is_some_and(|e| e.open.is_owned_by(&user))
        {
            self.prepared.remove(&handle);
        }
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.authenticate(&request).await?;
        self.run_update(&user, &command.query, None).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.authenticate(&request).await?;
        let entry = self.prepared_for(&user, &command.prepared_statement_handle)?;
        let mut rows = self.read_parameters(request.into_inner()).await?;
        // Parameters come with the update, or were bound before with DoPut on the query command.
        if rows.is_empty() {
            rows = entry.parameters;
        }
        if rows.is_empty() {
            return self.run_update(&user, &entry.sql, None).await;
        }
        // One run per parameter row; the counts add up.
        let mut total = 0i64;
        for row in rows {
            let count = self.run_update(&user, &entry.sql, Some(row)).await?;
            total = total.saturating_add(count.max(0));
        }
        Ok(total)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let builder = query.into_builder(&self.sql_info);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let catalogs = self.catalogs_of(&user).await?;
        let mut builder = query.into_builder();
        metadata::append_catalogs(catalogs.as_ref(), &mut builder);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let catalogs = self.catalogs_of(&user).await?;
        let mut builder = query.into_builder();
        metadata::append_schemas(catalogs.as_ref(), &mut builder);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        tracing::debug!(?query, "GetTables");
        let catalogs = self.catalogs_of(&user).await?;
        let catalog = query.catalog.clone();
        let mut builder = query.into_builder();
        metadata::append_tables(catalogs.as_ref(), catalog.as_deref(), &mut builder)
            .await
            .map_err(|err| query_status(QueryError::from(err)))?;
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let mut builder = query.into_builder();
        for table_type in metadata::TABLE_TYPES {
            builder.append(table_type);
        }
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::primary_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::primary_keys_schema())
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder(&self.xdbc_type_info).schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let builder = query.into_builder(&self.xdbc_type_info);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        Err(Status::unimplemented(
            "Substrait plans are not supported yet: send SQL (CommandStatementQuery)",
        ))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = self.authenticate(&request).await?;
        let info = FlightInfo::decode(query.info)
            .map_err(|err| Status::invalid_argument(format!("bad CancelQuery request: {err}")))?;
        self.cancel_flight_info(&user, &info)?;
        Ok(ActionCancelQueryResult {
            // ActionCancelQueryResult.CancelResult.CANCELLED (the enum is not re-exported).
            result: 1,
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let user = self.authenticate(&request).await?;
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            "SetSessionOptions" => {
                let options = session_options::SetSessionOptionsRequest::decode(action.body)
                    .map_err(|err| {
                        Status::invalid_argument(format!("bad SetSessionOptions request: {err}"))
                    })?;
                let id = user.session_id.as_deref().ok_or_else(|| {
                    Status::failed_precondition(
                        "session options need a session: log in with the Flight SQL Handshake \
                         and send its bearer token",
                    )
                })?;
                // A schema of an attached catalog is checked against its current names.
                self.service
                    .engine()
                    .attached_catalogs()
                    .refresh(None)
                    .await
                    .map_err(query_status)?;
                let mut session = self.sessions.get(id);
                let result =
                    session_options::set_options(self.service.engine(), &mut session, options);
                let auth = self.auth.clone();
                self.sessions
                    .put(id, session, |token| auth.check_token(token).is_ok());
                result.encode_to_vec()
            }
            "CancelFlightInfo" => {
                let cancel =
                    arrow_flight::CancelFlightInfoRequest::decode(action.body).map_err(|err| {
                        Status::invalid_argument(format!("bad CancelFlightInfo request: {err}"))
                    })?;
                let info = cancel.info.unwrap_or_default();
                self.cancel_flight_info(&user, &info)?;
                arrow_flight::CancelFlightInfoResult {
                    status: arrow_flight::CancelStatus::Cancelled as i32,
                }
                .encode_to_vec()
            }
            "QueryProgress" => {
                let ticket = arrow_flight::Ticket {
                    ticket: action.body,
                };
                let handle = statement_handle(&ticket).ok_or_else(|| {
                    Status::invalid_argument(
                        "QueryProgress takes the ticket of a statement (from its FlightInfo) as \
                         its body",
                    )
                })?;
                // The ticket first: DoGet registers the result as running before it takes
                // the ticket away.
                let waiting = self
                    .tickets
                    .get(&handle)
                    .is_some_and(|entry| entry.open.is_owned_by(&user));
                let progress = match self.running.progress(&handle, &user.user_id).await {
                    // Planned, not fetched yet: nothing runs until DoGet.
                    _ if waiting => Ok(serde_json::json!({"state": "waiting"})),
                    Some(progress) => serde_json::to_value(progress),
                    None => {
                        return Err(Status::not_found(
                            "no query of yours behind this ticket is waiting or running: it \
                             finished, was cancelled, or the ticket is unknown",
                        ));
                    }
                };
                progress
                    .map_err(|err| Status::internal(format!("progress not encodable: {err}")))?
                    .to_string()
                    .into_bytes()
            }
            "GetSessionOptions" => {
                session_options::get_options(self.service.engine(), &self.session_of(&user))
                    .encode_to_vec()
            }
            "CloseSession" => {
                if let Some(id) = &user.session_id {
                    self.sessions.close(id);
                }
                session_options::CloseSessionResult {
                    status: session_options::CLOSED,
                }
                .encode_to_vec()
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action {other:?}: ListActions lists the supported ones"
                )));
            }
        };
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(arrow_flight::ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
            action(
                "SetSessionOptions",
                "Set session options: catalog, schema, or DataFusion settings",
            ),
            action("GetSessionOptions", "The session's options"),
            action(
                "CancelFlightInfo",
                "Cancel the query behind a FlightInfo, fetched or not",
            ),
            action("CloseSession", "Forget the session's options"),
            action(
                "QueryProgress",
                "How far a statement has got: body = its ticket; answer = JSON with state, \
                 elapsed_ms, rows_read, bytes_read, bytes_planned, stages_done, stages_total, \
                 tasks_done, tasks_total",
            ),
        ])
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        Err(Status::unimplemented(format!(
            "DoGet for {} is not supported yet",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
