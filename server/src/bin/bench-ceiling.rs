//! The HTTP benchmark's ceiling (`make bench`): a bare axum endpoint answering a precomputed JSON
//! body of a given size, on the same runtime settings as the toolkit. Every toolkit figure is read
//! beside it: what this stack can do on this machine with no work behind the response.
//! Not part of the product.
//!
//!   bench-ceiling <port> <body bytes>      GET /ceiling

use axum::{Router, http::header, routing::get};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(size)) =
        (args.next().and_then(|p| p.parse::<u16>().ok()), args.next().and_then(|s| s.parse::<usize>().ok()))
    else {
        eprintln!("usage: bench-ceiling <port> <body bytes>");
        std::process::exit(2);
    };
    let body: &'static str = Box::leak(json_of_size(size).into_boxed_str());
    let app = Router::new()
        .route("/ceiling", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the port is free");
    axum::serve(listener, app).await.expect("serves");
}

/// `{"items":[{"id":…,"name":"…"},…]}` padded to exactly `size` bytes (at least a few).
fn json_of_size(size: usize) -> String {
    let mut s = String::from("{\"items\":[");
    let mut i = 0;
    while s.len() + 60 < size {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"id\":{i},\"name\":\"deployment-{i:08}\",\"status\":\"active\"}}"));
        i += 1;
    }
    s.push_str("],\"pad\":\"");
    while s.len() + 2 < size {
        s.push('x');
    }
    s.push_str("\"}");
    s
}
