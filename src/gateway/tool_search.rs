//! Tool search (`tool_search: true` on a virtual server, `catalog.tool_search` for the whole
//! gateway): instead of the catalog, clients list three tools of the gateway's own —
//! `search_tools` (the best matches for a query, with their full definitions),
//! `call_tool` (calls a catalog tool by name) and `list_tool_names`. A catalog of hundreds of
//! tools then costs a client's context three definitions.
//!
//! Search and calls go through the caller's own catalog (its view's), so a tool outside it is
//! never found and never called. Ranking is BM25 (the `bm25` crate, English stemming and stop
//! words) over each tool's name, title, description and its parameters' names and
//! descriptions; equal scores keep the catalog's order (by name), so the same query gets the
//! same answer and clients' prompt caches stay warm.

use std::sync::Arc;

use bm25::{Document, Language, SearchEngine, SearchEngineBuilder};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, Tool};
use serde_json::{Value, json};

mod raw_call;

pub use raw_call::unwrap_call;

use super::{Catalog, CatalogTool};
use crate::error::GatewayError;

pub const SEARCH: &str = "search_tools";
pub const CALL: &str = "call_tool";
pub const LIST_NAMES: &str = "list_tool_names";

/// How many tools `search_tools` answers when the client does not say.
const DEFAULT_LIMIT: usize = 5;
/// The most it answers.
const MAX_LIMIT: usize = 50;

/// Whether `name` is one of the three tools search offers.
pub fn is_search_tool(name: &str) -> bool {
    [SEARCH, CALL, LIST_NAMES].contains(&name)
}

/// The three tools a client of tool search lists.
pub fn tools() -> Vec<Tool> {
    let schema = |value: Value| -> Arc<JsonObject> {
        match value {
            Value::Object(object) => Arc::new(object),
            _ => unreachable!("the schemas below are objects"),
        }
    };
    vec![
        Tool::new(
            SEARCH,
            "Finds the tools that fit a task, best first, with their full definitions (name, \
             description, input schema). Call one with call_tool.",
            schema(json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What you want to do, in a few words"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                              "description": "How many tools to answer at most"}
                },
                "required": ["query"]
            })),
        ),
        Tool::new(
            CALL,
            "Calls a tool that search_tools or list_tool_names named, with the arguments its \
             input schema asks for.",
            schema(json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's name"},
                    "arguments": {"type": "object", "description": "The tool's arguments"}
                },
                "required": ["name"]
            })),
        ),
        Tool::new(
            LIST_NAMES,
            "Lists the names of every tool there is to call, without their definitions.",
            schema(json!({"type": "object", "properties": {}})),
        ),
    ]
}

/// What a client's call of one of the three tools comes to: an answer of the gateway's own,
/// or the catalog tool `call_tool` names, to be routed like any call.
pub enum Searched {
    Answer(CallToolResult),
    Call(CallToolRequestParams),
}

/// Answers `search_tools` or `list_tool_names` from `catalog`, or unwraps `call_tool`.
pub fn answer(params: CallToolRequestParams, catalog: &Catalog) -> Result<Searched, GatewayError> {
    let arguments = params.arguments.clone().unwrap_or_default();
    if params.name != CALL {
        return own_answer(&params.name, &arguments, catalog).map(Searched::Answer);
    }
    let name = match arguments.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(invalid("`name` (a string) is required")),
    };
    if is_search_tool(&name) {
        return Err(invalid(
            "call_tool calls the catalog's tools, not the search's",
        ));
    }
    let inner = match arguments.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(inner)) => Some(inner.clone()),
        Some(_) => return Err(invalid("`arguments` is an object")),
    };
    // The rest of the request (its `_meta`, a 2026-07-28 retry's `inputResponses` and
    // `requestState`) goes on as the client sent it.
    let mut call = params;
    call.name = name.into();
    call.arguments = inner;
    Ok(Searched::Call(call))
}

/// The answer of `search_tools` or `list_tool_names` (`tool`) to `arguments`, from `catalog`:
/// the gateway's own, on every way a call goes.
pub fn own_answer(
    tool: &str,
    arguments: &JsonObject,
    catalog: &Catalog,
) -> Result<CallToolResult, GatewayError> {
    match tool {
        SEARCH => {
            let query = match arguments.get("query") {
                Some(Value::String(query)) if !query.trim().is_empty() => query,
                _ => return Err(invalid("`query` (a non-empty string) is required")),
            };
            let limit = match arguments.get("limit") {
                None | Some(Value::Null) => DEFAULT_LIMIT,
                Some(limit) => match limit.as_u64() {
                    Some(limit @ 1..) => (limit as usize).min(MAX_LIMIT),
                    _ => return Err(invalid("`limit` is a whole number from 1")),
                },
            };
            let found: Vec<&Tool> = search(catalog, query, limit);
            Ok(CallToolResult::structured(json!({ "tools": found })))
        }
        LIST_NAMES => {
            let names: Vec<&str> = catalog
                .tools()
                .iter()
                .map(|tool| tool.exposed_name())
                .collect();
            Ok(CallToolResult::structured(json!({ "names": names })))
        }
        _ => Err(GatewayError::UnknownTool {
            name: tool.to_owned(),
        }),
    }
}

fn invalid(reason: &str) -> GatewayError {
    GatewayError::InvalidArguments {
        reason: reason.to_owned(),
    }
}

/// The `limit` tools of `catalog` that best match `query`, best first.
pub fn search<'a>(catalog: &'a Catalog, query: &str, limit: usize) -> Vec<&'a Tool> {
    let tools = catalog.tools();
    catalog
        .search_index()
        .rank(query, limit)
        .into_iter()
        .map(|index| &tools[index].item)
        .collect()
}

/// A catalog's tools, indexed for BM25 by their position in it: built once per catalog
/// (catalogs are immutable snapshots), not at each search.
pub struct Index(SearchEngine<usize>);

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index")
    }
}

impl Index {
    pub fn of(tools: &[CatalogTool]) -> Self {
        let tools: Vec<&Tool> = tools.iter().map(|entry| &entry.item).collect();
        Self::of_tools(&tools)
    }

    fn of_tools(tools: &[&Tool]) -> Self {
        let documents = tools
            .iter()
            .enumerate()
            .map(|(index, tool)| Document::new(index, searched_text(tool)));
        Self(SearchEngineBuilder::<usize>::with_documents(Language::English, documents).build())
    }

    /// The indices of the `limit` tools that best match `query`, best first; equal scores
    /// in the order the tools were indexed.
    fn rank(&self, query: &str, limit: usize) -> Vec<usize> {
        let mut found: Vec<(i64, usize)> = self
            .0
            .search(query, None)
            .into_iter()
            // Scores equal but for the order floats were summed in compare equal.
            .map(|result| ((result.score * 10_000.0).round() as i64, result.document.id))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        found
            .into_iter()
            .take(limit)
            .map(|(_, index)| index)
            .collect()
    }
}

/// The indices of the `limit` tools of `tools` that best match `query` (see [`Index::rank`]).
#[cfg(test)]
fn rank(tools: &[&Tool], query: &str, limit: usize) -> Vec<usize> {
    Index::of_tools(tools).rank(query, limit)
}

/// What a tool is searched by: its name (split into words), title, description, and its
/// parameters' names and descriptions.
fn searched_text(tool: &Tool) -> String {
    let mut text = words_of(&tool.name);
    for part in [tool.title.as_deref(), tool.description.as_deref()]
        .into_iter()
        .flatten()
    {
        text.push(' ');
        text.push_str(part);
    }
    if let Some(Value::Object(properties)) = tool.input_schema.get("properties") {
        for (name, property) in properties {
            text.push(' ');
            text.push_str(&words_of(name));
            if let Some(Value::String(description)) = property.get("description") {
                text.push(' ');
                text.push_str(description);
            }
        }
    }
    text
}

/// `everything__getTinyImage` as `everything get Tiny Image`: names are searched as words.
fn words_of(name: &str) -> String {
    let mut words = String::with_capacity(name.len() + 8);
    let mut previous: Option<char> = None;
    for char in name.chars() {
        if matches!(char, '_' | '-' | '.' | '/') {
            words.push(' ');
        } else {
            if char.is_uppercase() && previous.is_some_and(char::is_lowercase) {
                words.push(' ');
            }
            words.push(char);
        }
        previous = Some(char);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: &str, properties: Value) -> Tool {
        let Value::Object(schema) = json!({"type": "object", "properties": properties}) else {
            unreachable!()
        };
        Tool::new(name.to_owned(), description.to_owned(), Arc::new(schema))
    }

    fn names(tools: &[Tool], query: &str, limit: usize) -> Vec<String> {
        let refs: Vec<&Tool> = tools.iter().collect();
        rank(&refs, query, limit)
            .into_iter()
            .map(|index| tools[index].name.to_string())
            .collect()
    }

    fn catalog() -> Vec<Tool> {
        vec![
            tool(
                "everything__add",
                "Adds two numbers",
                json!({"a": {"type": "number"}, "b": {}}),
            ),
            tool(
                "everything__echo",
                "Echoes back the input",
                json!({"message": {"type": "string", "description": "Message to echo"}}),
            ),
            tool(
                "everything__getTinyImage",
                "Returns the MCP_TINY_IMAGE",
                json!({}),
            ),
            tool(
                "time__get_current_time",
                "Get current time in a specific timezones",
                json!({"timezone": {"description": "IANA timezone name"}}),
            ),
            tool(
                "time__convert_time",
                "Convert time between timezones",
                json!({"source_timezone": {}, "time": {}, "target_timezone": {}}),
            ),
        ]
    }

    #[test]
    fn the_best_match_comes_first_by_name_description_and_parameters() {
        let tools = catalog();
        assert_eq!(
            names(&tools, "echo back a message", 1),
            ["everything__echo"]
        );
        assert_eq!(names(&tools, "tiny image", 1), ["everything__getTinyImage"]);
        assert_eq!(
            names(&tools, "convert between timezones", 1),
            ["time__convert_time"]
        );
        assert_eq!(names(&tools, "sum of two numbers", 1), ["everything__add"]);
        assert!(names(&tools, "zebra", 5).is_empty());
    }

    #[test]
    fn equal_scores_keep_the_catalog_order_every_time() {
        let tools: Vec<Tool> = (0..30)
            .map(|n| tool(&format!("t{n:02}__same"), "Reads a file", json!({})))
            .collect();
        let first = names(&tools, "read file", 10);
        assert_eq!(
            first,
            (0..10)
                .map(|n| format!("t{n:02}__same"))
                .collect::<Vec<_>>()
        );
        for _ in 0..20 {
            assert_eq!(names(&tools, "read file", 10), first);
        }
    }

    /// The measure BENCHMARKS.md reports: on real servers' tools (tests/fixtures/tool_search),
    /// what `tools/list` costs a model with and without search, and how often the labelled
    /// query's tool is the first answer (recall@1) or among the first five (recall@5).
    /// `cargo test --lib tool_search::tests::measure -- --nocapture` prints it.
    #[test]
    fn measure_on_real_servers_tools() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tool_search");
        let read = |file: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}/{file}")).unwrap())
                .unwrap()
        };
        let catalog: Vec<Tool> =
            serde_json::from_value(read("catalog.json")["tools"].clone()).unwrap();
        let queries = read("queries.json")["queries"].as_array().unwrap().clone();

        let encoding = tiktoken_rs::o200k_base_singleton();
        let cost = |tools: &[Tool]| {
            let listed = serde_json::to_string(&json!({ "tools": tools })).unwrap();
            (
                listed.len(),
                encoding.encode_with_special_tokens(&listed).len(),
            )
        };
        let (full_bytes, full_tokens) = cost(&catalog);
        let (search_bytes, search_tokens) = cost(&tools());

        let (mut at_1, mut at_5, mut misses) = (0, 0, Vec::new());
        for labelled in &queries {
            let (query, wanted) = (labelled[0].as_str().unwrap(), labelled[1].as_str().unwrap());
            let found = names(&catalog, query, 5);
            match found.iter().position(|name| name == wanted) {
                Some(0) => {
                    at_1 += 1;
                    at_5 += 1;
                }
                Some(_) => at_5 += 1,
                None => misses.push(format!("{query:?} → {found:?}, not {wanted}")),
            }
        }
        let recall = |hits: usize| hits as f64 / queries.len() as f64;
        println!(
            "{} tools: tools/list {full_bytes} bytes, {full_tokens} tokens; with search \
             {search_bytes} bytes, {search_tokens} tokens\n{} queries: recall@1 {:.2}, \
             recall@5 {:.2}\nnot in the first five: {misses:#?}",
            catalog.len(),
            queries.len(),
            recall(at_1),
            recall(at_5),
        );
        assert_eq!(catalog.len(), 56);
        assert!(search_tokens * 10 < full_tokens);
        // Floors a little under what was measured: a change to the ranking that loses more
        // than a query or two fails here.
        assert!(
            recall(at_1) >= RECALL_AT_1_FLOOR,
            "recall@1 {}",
            recall(at_1)
        );
        assert!(
            recall(at_5) >= RECALL_AT_5_FLOOR,
            "recall@5 {}",
            recall(at_5)
        );
    }

    const RECALL_AT_1_FLOOR: f64 = 0.80;
    const RECALL_AT_5_FLOOR: f64 = 0.90;

    #[test]
    fn call_tool_passes_on_the_rest_of_the_request() {
        let Value::Object(arguments) =
            json!({"name": "everything__echo", "arguments": {"message": "hi"}})
        else {
            unreachable!()
        };
        let mut params = CallToolRequestParams::new(CALL).with_arguments(arguments);
        params.request_state = Some("state from the last round".into());
        let Ok(Searched::Call(call)) = answer(params, &Catalog::default()) else {
            panic!("call_tool unwraps")
        };
        assert_eq!(call.name, "everything__echo");
        assert_eq!(call.arguments.unwrap()["message"], "hi");
        assert_eq!(
            call.request_state.as_deref(),
            Some("state from the last round")
        );
        for arguments in [
            json!({}),
            json!({"name": CALL}),
            json!({"name": "x", "arguments": 1}),
        ] {
            let Value::Object(arguments) = arguments else {
                unreachable!()
            };
            let params = CallToolRequestParams::new(CALL).with_arguments(arguments);
            assert!(answer(params, &Catalog::default()).is_err());
        }
    }

    #[test]
    fn names_are_searched_as_words() {
        assert_eq!(
            words_of("everything__getTinyImage"),
            "everything  get Tiny Image"
        );
        assert_eq!(words_of("fs.read-file"), "fs read file");
    }
}
