package emrarchive.oracles;

import eu.europa.esig.dss.enumerations.Indication;
import eu.europa.esig.dss.enumerations.SignatureLevel;
import eu.europa.esig.dss.enumerations.SubIndication;
import eu.europa.esig.dss.jaxb.object.Message;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.model.x509.CertificateToken;
import eu.europa.esig.dss.diagnostic.DiagnosticData;
import eu.europa.esig.dss.diagnostic.TimestampWrapper;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.simplereport.jaxb.XmlEvidenceRecord;
import eu.europa.esig.dss.simplereport.jaxb.XmlTimestamp;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.spi.x509.CommonTrustedCertificateSource;
import eu.europa.esig.dss.validation.SignedDocumentValidator;
import eu.europa.esig.dss.validation.reports.Reports;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.time.Instant;
import java.util.Arrays;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.verapdf.gf.foundry.VeraGreenfieldFoundryProvider;
import org.verapdf.pdfa.Foundries;
import org.verapdf.pdfa.PDFAParser;
import org.verapdf.pdfa.PDFAValidator;
import org.verapdf.pdfa.flavours.PDFAFlavour;
import org.verapdf.pdfa.results.TestAssertion;
import org.verapdf.pdfa.results.ValidationResult;
import org.verapdf.pdfa.validation.profiles.RuleId;

/**
 * The field's reference validators, run on many files in one JVM start (tests/support/oracles.py).
 *
 * <p>{@code verapdf FILE...}: PDF/A-3B profile, whatever flavour the file claims, one JSON line per
 * file {file, compliant, failed: ["clause-test", ...]}.
 *
 * <p>{@code dss TRUST_PEM FILE...}: EU DSS with the default validation policy, the certificates in
 * TRUST_PEM as the only trust anchors and no online source (dss-service is not on the class path:
 * only what the document embeds counts); one JSON line per file {file, signatures: [{id,
 * indication, subIndication, signatureLevel, errors, warnings, timestamps: [{id, type, indication,
 * subIndication}]}], timestamps: [the same, for timestamps that cover no signature]}.
 *
 * <p>A file that cannot be judged gets {file, error}: one bad file must not hide the others.
 */
public final class Oracles {
  private Oracles() {}

  public static void main(String[] args) throws Exception {
    if (args.length >= 1 && args[0].equals("verapdf")) {
      VeraGreenfieldFoundryProvider.initialise();
      for (String f : Arrays.copyOfRange(args, 1, args.length)) {
        System.out.println(guard(f, () -> veraPdf(f)));
      }
    } else if (args.length >= 2 && args[0].equals("dss")) {
      CommonCertificateVerifier verifier = offlineVerifier(new File(args[1]));
      for (String f : Arrays.copyOfRange(args, 2, args.length)) {
        System.out.println(guard(f, () -> dss(f, verifier, null, null)));
      }
    } else if (args.length >= 3 && args[0].equals("dss-er")) {
      CommonCertificateVerifier verifier = offlineVerifier(new File(args[1]));
      Date at = Date.from(Instant.parse(args[2]));
      for (int i = 3; i + 1 < args.length; i += 2) {
        String pdf = args[i];
        String er = args[i + 1];
        System.out.println(guard(pdf, () -> dss(pdf, verifier, er, at)));
      }
    } else if (args.length >= 3 && args[0].equals("ers")) {
      Evidence.run(Arrays.copyOfRange(args, 1, args.length));
    } else {
      System.err.println("usage: Oracles verapdf FILE... | Oracles dss TRUST_PEM FILE..."
          + " | Oracles dss-er TRUST_PEM AT PDF ER... | Oracles ers TRUST_PEM AT|now DOC ER...");
      System.exit(2);
    }
  }

  interface Judge {
    String run() throws Exception;
  }

  private static String guard(String file, Judge judge) {
    try {
      return judge.run();
    } catch (Exception | LinkageError e) {
      return "{\"file\":" + q(file) + ",\"error\":" + q(e.toString()) + "}";
    }
  }

  private static String veraPdf(String file) throws Exception {
    try (PDFAParser parser =
            Foundries.defaultInstance().createParser(new File(file), PDFAFlavour.PDFA_3_B);
        PDFAValidator validator =
            Foundries.defaultInstance().createValidator(PDFAFlavour.PDFA_3_B, false)) {
      ValidationResult result = validator.validate(parser);
      // One entry per failed rule: "clause-test (count): description of the first failure".
      Map<RuleId, Integer> counts = result.getFailedChecks();
      Map<RuleId, String> first = new LinkedHashMap<>();
      for (TestAssertion a : result.getTestAssertions()) {
        if (a.getStatus() == TestAssertion.Status.FAILED) {
          first.putIfAbsent(a.getRuleId(), a.getMessage());
        }
      }
      List<String> failed = new ArrayList<>();
      for (Map.Entry<RuleId, String> e : first.entrySet()) {
        RuleId r = e.getKey();
        failed.add(q(r.getClause() + "-" + r.getTestNumber() + " (" + counts.get(r) + "): "
            + e.getValue()));
      }
      return "{\"file\":" + q(file) + ",\"compliant\":" + result.isCompliant()
          + ",\"flavour\":" + q(String.valueOf(result.getPDFAFlavour()))
          + ",\"failed\":[" + String.join(",", failed) + "]}";
    }
  }

  static CommonCertificateVerifier offlineVerifier(File trustPem) throws Exception {
    CommonTrustedCertificateSource anchors = new CommonTrustedCertificateSource();
    try (InputStream in = new FileInputStream(trustPem)) {
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        anchors.addCertificate(new CertificateToken((X509Certificate) c));
      }
    }
    CommonCertificateVerifier verifier = new CommonCertificateVerifier();
    verifier.setTrustedCertSources(anchors);
    // Offline on purpose: an archive's record must carry its own validation data.
    verifier.setAIASource(null);
    verifier.setOcspSource(null);
    verifier.setCrlSource(null);
    return verifier;
  }

  private static String dss(
      String file, CommonCertificateVerifier verifier, String evidenceRecord, Date at) {
    SignedDocumentValidator validator =
        SignedDocumentValidator.fromDocument(new FileDocument(file));
    validator.setCertificateVerifier(verifier);
    if (evidenceRecord != null) {
      validator.setDetachedEvidenceRecordDocuments(List.of(new FileDocument(evidenceRecord)));
    }
    if (at != null) {
      validator.setValidationTime(at);
    }
    Reports reports = validator.validateDocument();
    SimpleReport report = reports.getSimpleReport();
    DiagnosticData diagnostic = reports.getDiagnosticData();
    List<String> signatures = new ArrayList<>();
    for (String id : report.getSignatureIdList()) {
      // The timestamps a signature carries (signature timestamp, and in PAdES the document
      // timestamps that cover it, as archive timestamps), each with DSS's own verdict.
      List<String> timestamps = new ArrayList<>();
      for (XmlTimestamp t : report.getSignatureTimestamps(id)) {
        timestamps.add(timestamp(t.getId(), diagnostic, t.getIndication(), t.getSubIndication()));
      }
      List<String> records = new ArrayList<>();
      for (XmlEvidenceRecord e : report.getSignatureEvidenceRecords(id)) {
        records.add("{\"id\":" + q(e.getId())
            + verdict(e.getIndication(), e.getSubIndication()) + "}");
      }
      SignatureLevel level = report.getSignatureFormat(id);
      signatures.add("{\"id\":" + q(id) + verdict(report.getIndication(id),
          report.getSubIndication(id)) + ",\"signatureLevel\":" + q(String.valueOf(level))
          + ",\"errors\":" + messages(report.getAdESValidationErrors(id))
          + ",\"warnings\":" + messages(report.getAdESValidationWarnings(id))
          + ",\"timestamps\":[" + String.join(",", timestamps) + "]"
          + ",\"evidenceRecords\":[" + String.join(",", records) + "]"
          + ",\"bestSignatureTime\":" + q(String.valueOf(report.getBestSignatureTime(id)))
          + "}");
    }
    List<String> independent = new ArrayList<>();
    for (String id : report.getTimestampIdList()) {
      independent.add(timestamp(id, diagnostic, report.getIndication(id),
          report.getSubIndication(id)));
    }
    return "{\"file\":" + q(file) + ",\"signatures\":[" + String.join(",", signatures)
        + "],\"timestamps\":[" + String.join(",", independent) + "]}";
  }

  private static String timestamp(
      String id, DiagnosticData diagnostic, Indication indication, SubIndication sub) {
    TimestampWrapper wrapper = diagnostic.getTimestampById(id);
    String type = wrapper == null ? "null" : q(String.valueOf(wrapper.getType()));
    return "{\"id\":" + q(id) + ",\"type\":" + type + verdict(indication, sub) + "}";
  }

  static String messages(List<Message> list) {
    List<String> out = new ArrayList<>();
    for (Message m : list) {
      out.add(q(m.getKey() + ": " + m.getValue()));
    }
    return "[" + String.join(",", out) + "]";
  }

  static String verdict(Indication indication, SubIndication sub) {
    return ",\"indication\":" + q(String.valueOf(indication))
        + ",\"subIndication\":" + (sub == null ? "null" : q(sub.toString()));
  }

  /** A JSON string literal: the oracle has no JSON library of its own to keep its class path. */
  static String q(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }
}
