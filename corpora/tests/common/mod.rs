//! Real files the corpora tests write: PDFs with a text layer.

/// A two-page PDF with a text layer, written with lopdf (as pdf-extract
/// re-exports it).
pub fn make_pdf(pages: &[&str], encrypt: bool) -> Vec<u8> {
    use pdf_extract::content::{Content, Operation};
    use pdf_extract::{Dictionary, Object, Stream};
    let mut doc = pdf_extract::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Subtype", Object::Name(b"Type1".to_vec()));
    font.set("BaseFont", Object::Name(b"Helvetica".to_vec()));
    font.set("Encoding", Object::Name(b"WinAnsiEncoding".to_vec()));
    let font_id = doc.add_object(font);
    let mut fonts = Dictionary::new();
    fonts.set("F1", Object::Reference(font_id));
    let mut resources = Dictionary::new();
    resources.set("Font", Object::Dictionary(fonts));
    let resources_id = doc.add_object(resources);
    let mut kids = Vec::new();
    for text in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec![Object::Name(b"F1".to_vec()), 12.into()]),
            Operation::new("Td", vec![72.into(), 700.into()]),
        ];
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                ops.push(Operation::new("Td", vec![0.into(), (-16).into()]));
            }
            ops.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.encode().unwrap()));
        let mut page = Dictionary::new();
        page.set("Type", Object::Name(b"Page".to_vec()));
        page.set("Parent", Object::Reference(pages_id));
        page.set("Contents", Object::Reference(content_id));
        kids.push(Object::Reference(doc.add_object(page)));
    }
    let mut pages_dict = Dictionary::new();
    pages_dict.set("Type", Object::Name(b"Pages".to_vec()));
    pages_dict.set("Count", Object::Integer(kids.len() as i64));
    pages_dict.set("Kids", Object::Array(kids));
    pages_dict.set("Resources", Object::Reference(resources_id));
    pages_dict.set(
        "MediaBox",
        Object::Array(vec![0.into(), 0.into(), 612.into(), 792.into()]),
    );
    doc.objects.insert(pages_id, Object::Dictionary(pages_dict));
    let mut catalog = Dictionary::new();
    catalog.set("Type", Object::Name(b"Catalog".to_vec()));
    catalog.set("Pages", Object::Reference(pages_id));
    let catalog_id = doc.add_object(catalog);
    doc.trailer.set("Root", Object::Reference(catalog_id));
    if encrypt {
        let mut enc = Dictionary::new();
        enc.set("Filter", Object::Name(b"Standard".to_vec()));
        enc.set("V", Object::Integer(2));
        enc.set("R", Object::Integer(3));
        enc.set("Length", Object::Integer(128));
        enc.set("P", Object::Integer(-44));
        enc.set("O", Object::string_literal(vec![7u8; 32]));
        enc.set("U", Object::string_literal(vec![9u8; 32]));
        let enc_id = doc.add_object(enc);
        doc.trailer.set("Encrypt", Object::Reference(enc_id));
        doc.trailer.set(
            "ID",
            Object::Array(vec![
                Object::string_literal(vec![1u8; 16]),
                Object::string_literal(vec![1u8; 16]),
            ]),
        );
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
