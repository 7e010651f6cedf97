//! A small YAML tree that keeps the position of every node and every mapping key.
//!
//! Diagnostics must name the line and column of the offending key or value, and duplicate
//! keys must be reported rather than silently collapsed, so we build our own tree from the
//! parser's events instead of using a generic value type.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Position of a node in its file: 1-based line, 1-based column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar with its text and whether it was quoted (quoted scalars are always strings).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Mapping entries in document order; duplicates are kept so callers can report them.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for an unquoted `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false }
            if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "scalar",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document. An empty file yields `Ok(None)`; several documents are an error
/// because a conf.d file is one document.
pub fn parse(source: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.push(event, span)?;
    }
    Ok(builder.root)
}

#[derive(Default)]
struct Builder {
    stack: Vec<Node>,
    /// A mapping key waiting for its value, one slot per open mapping on the stack.
    pending_keys: Vec<Option<Node>>,
    root: Option<Node>,
    documents: usize,
}

impl Builder {
    fn push(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = Pos::of(&span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "more than one YAML document in a file".into(),
                    });
                }
            }
            Event::Scalar(text, style, _, _) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                self.attach(Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: text.into_owned(),
                        quoted,
                    },
                })?;
            }
            Event::Alias(_) => {
                return Err(SyntaxError {
                    pos,
                    message: "YAML aliases are not supported in conf.d files".into(),
                });
            }
            Event::SequenceStart(..) => {
                self.stack.push(Node {
                    pos,
                    kind: NodeKind::Seq(Vec::new()),
                });
                self.pending_keys.push(None);
            }
            Event::MappingStart(..) => {
                self.stack.push(Node {
                    pos,
                    kind: NodeKind::Map(Vec::new()),
                });
                self.pending_keys.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.pending_keys.pop();
                if let Some(node) = self.stack.pop() {
                    self.attach(node)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn attach(&mut self, node: Node) -> Result<(), SyntaxError> {
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut parent.kind {
            NodeKind::Seq(items) => items.push(node),
            NodeKind::Map(entries) => {
                let slot = self
                    .pending_keys
                    .last_mut()
                    .expect("a slot per open mapping");
                match slot.take() {
                    None => {
                        if !matches!(node.kind, NodeKind::Scalar { .. }) {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: "mapping keys must be plain strings".into(),
                            });
                        }
                        *slot = Some(node);
                    }
                    Some(key) => entries.push((key, node)),
                }
            }
            NodeKind::Scalar { .. } => unreachable!("scalars never hold children"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let root = parse("a: 1\nb:\n  c: 'x'\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, col: 1 });
        let NodeKind::Map(inner) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos { line: 3, col: 3 });
        assert_eq!(
            inner[0].1.kind,
            NodeKind::Scalar {
                text: "x".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn keeps_duplicate_keys() {
        let root = parse("a: 1\na: 2\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }

    #[test]
    fn empty_file_is_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
